import Foundation
import Rules
import Testing

@Suite("Concurrency")
struct ConcurrencyTests {
    @Test("1,000 transactions whose lookups each take 200 ms complete together on one Lua state")
    func thousandTransactions() async throws {
        let harness = try Harness("""
        return { connect = { rule("fcrdns", function(ctx)
          ctx.vars.ip = ctx.client.ip
          local r = dns.iprev(ctx.client.ip)
          if ctx.vars.ip ~= ctx.client.ip then return defer() end
          if r.status == "pass" then return accept(reply(250, "2.0.0", ctx.client.ip)) end
          return reject()
        end) } }
        """)
        harness.resolver.delay = .milliseconds(200)
        let engine = harness.engine
        let clock = ContinuousClock()
        let started = clock.now
        let results = await withTaskGroup(of: (Int, StageResult).self) { group in
            for index in 0..<1000 {
                group.addTask {
                    var session = defaultSession
                    session.clientIP = index.isMultiple(of: 2) ? "192.0.2.10" : "192.0.2.66"
                    let transaction = await engine.beginTransaction(session)
                    let result = await engine.evaluate(.connect, in: transaction)
                    await engine.endTransaction(transaction)
                    return (index, result)
                }
            }
            var all: [(Int, StageResult)] = []
            for await item in group { all.append(item) }
            return all
        }
        let elapsed = clock.now - started
        #expect(results.count == 1000)
        for (index, result) in results {
            if index.isMultiple(of: 2) {
                #expect(result.verdict.description == "accept 250 2.0.0 192.0.2.10")
            } else {
                #expect(result.verdict.kind == .reject)
            }
        }
        // Serialised, this would take 1,000 × 2 lookups × 200 ms = 400 s.
        #expect(elapsed < .seconds(30), "took \(elapsed)")
    }
}

@Suite("Concurrent evaluations keep their own state")
struct ConcurrentStateTests {
    @Test("log lines and failures name the rule of their own transaction, across DNS waits")
    func currentRulePerTransaction() async throws {
        let harness = try Harness("""
        return {
          connect = {
            action("first", function() end),
            action("second", function() end),
            rule("slow", function(ctx)
              dns.lookup("slow.test")
              log.info("after the wait")
              error("boom")
            end),
          },
          mail = { rule("quick", function(ctx) log.info("quick ran") end) },
        }
        """)
        harness.resolver.setFault(.delay(.milliseconds(300)), for: "slow.test")
        let engine = harness.engine
        async let slow: StageResult = {
            let transaction = await engine.beginTransaction(defaultSession)
            return await engine.evaluate(.connect, in: transaction)
        }()
        try await Task.sleep(for: .milliseconds(50))
        for _ in 0..<5 {
            let transaction = await engine.beginTransaction(defaultSession)
            let quick = await engine.evaluate(.mail, in: transaction)
            #expect(quick.trace.contains(.log(level: "info", rule: "quick", message: "quick ran")))
        }
        let result = await slow
        #expect(result.trace.contains(.log(level: "info", rule: "slow", message: "after the wait")), "\(result.trace)")
        #expect(result.decidedBy == "slow")
        #expect(result.failure?.hasPrefix("rule 'slow': test.lua:") == true, "\(result.failure ?? "")")
    }
}
