import DNS
import Foundation
import Lua
import NIOPosix
import Policy
import Rules

/// The engine benchmark: a full transaction (connect, helo, mail, one rcpt) through the
/// shipped default policy on warm zone data, beside the same logic in plain Lua over a
/// table of answers, in the same process. Prints transactions/s and µs per transaction.
@main
struct EngineBenchmark {
    static func main() async throws {
        let arguments = CommandLine.arguments
        let root = arguments.count > 1 ? arguments[1] : "."
        let transactions = arguments.count > 2 ? Int(arguments[2]) ?? 100_000 : 100_000
        let records = try ZoneFile.load(path: root + "/examples/example.zone")
        // As in `vrules serve`: the engine runs on an event loop, and the tasks that enter it
        // (the server's connection tasks) prefer the same loop's executor.
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
        let loopExecutor = EventLoopExecutor(loop)
        let engine = try RuleEngine(scriptPath: root + "/rules/main.lua", resolvers: SingleResolver(ZoneResolver(records: records)),
                                    tracing: false, executor: loopExecutor)
        let callers = loopExecutor
        let session = SimulatedSession(
            base: SessionInfo(clientIP: "192.0.2.10", clientPort: 40000, serverName: "mx.vrules.test",
                              helo: "mail.good.example", mailFrom: MailAddress("alice@good.example")),
            recipients: [MailAddress("bob@implicit.example")])

        // Sanity: the benchmarked session must be the accepted one, through all four stages.
        let check = await Task(executorPreference: callers) { await engine.simulate(session) }.value
        guard check.stoppedAt == nil, check.acceptedRecipients.count == 1,
              check.steps.allSatisfy({ $0.result.failure == nil }) else {
            fatalError("benchmark session was not accepted: \(check.steps.map { $0.result.verdict })")
        }
        await Task(executorPreference: callers) { for _ in 0..<2_000 { _ = await engine.simulate(session) } }.value

        // Rounds alternate the runs, so that another process taking the cores for a
        // while slows all of them alike; each row prints its median round and its best.
        let rounds = arguments.count > 3 ? max(1, Int(arguments[3]) ?? 10) : 10
        let perRound = max(1, transactions / rounds)
        let plain = try PlainPolicy(records: records, source: try Self.plainSource(root: root))
        var engineRuns: [Measurement] = [], hopRuns: [Measurement] = [], plainRuns: [Measurement] = []
        for _ in 0..<rounds {
            engineRuns.append(await Task(executorPreference: callers) {
                await engine.withIsolation { engine in
                    let wall = Self.wallTime()
                    let cpu = Self.cpuTime()
                    for _ in 0..<perRound { _ = await engine.simulate(session) }
                    return Measurement(items: perRound, wallSeconds: Self.wallTime() - wall, cpuSeconds: Self.cpuTime() - cpu)
                }
            }.value)
            let hops = perRound
            hopRuns.append(await Task(executorPreference: callers) {
                let wall = Self.wallTime()
                let cpu = Self.cpuTime()
                for _ in 0..<hops { _ = await engine.simulate(session) }
                return Measurement(items: hops, wallSeconds: Self.wallTime() - wall, cpuSeconds: Self.cpuTime() - cpu)
            }.value)
            plainRuns.append(try plain.run(transactions: perRound))
        }

        print("vrules engine benchmark: \(rounds) rounds of \(perRound) transactions (connect, helo, mail, 1 rcpt), default policy, warm zone data, 1 core")
        print("  CPU µs per transaction: median round (best round); tx/s of the median round")
        let engineRun = Measurement.median(engineRuns), plainRun = Measurement.median(plainRuns)
        for (label, median, best) in [("vrules engine (sandbox, coroutines)", engineRun, Measurement.best(engineRuns)),
                                      ("vrules, one actor hop per tx", Measurement.median(hopRuns), Measurement.best(hopRuns)),
                                      ("plain Lua, table of answers", plainRun, Measurement.best(plainRuns))] {
            print("  " + label.padding(toLength: 36, withPad: " ", startingAt: 0)
                  + String(format: " %7.2f µs (%6.2f)  %8.0f tx/s", median.cpuMicrosPerItem, best.cpuMicrosPerItem, median.perSecond))
        }
        // Each round's engine runs beside its own plain Lua run: the ratio of a pair is the
        // least disturbed by the machine's speed changing between rounds.
        func pairedRatios(_ runs: [Measurement]) -> [Double] {
            zip(runs, plainRuns).map { $0.cpuMicrosPerItem / $1.cpuMicrosPerItem }.sorted()
        }
        for (label, ratios) in [("engine / plain Lua", pairedRatios(engineRuns)), ("one hop per tx / plain Lua", pairedRatios(hopRuns))] {
            print(String(format: "  %@, round by round: median %.2f× (%.2f–%.2f×); target ≤ 2×", label as NSString,
                         ratios[ratios.count / 2], ratios.first!, ratios.last!))
        }
        print(String(format: "  medians' ratio %.2f×, best rounds' ratio %.2f×; engine CPU per transaction target ≤ 10 µs",
                     engineRun.cpuMicrosPerItem / plainRun.cpuMicrosPerItem,
                     Measurement.best(engineRuns).cpuMicrosPerItem / Measurement.best(plainRuns).cpuMicrosPerItem))
        try await Self.dnsblRoundTrips()
    }

    /// A stage asking five blocklists at once costs about one round trip, not five: each
    /// list answers after 5 ms (a zone resolver with a delay), asked with one `dns.dnsbl`
    /// call over the five zones, beside five calls of one zone each.
    static func dnsblRoundTrips(stages: Int = 100) async throws {
        let zones = (1...5).map { "list\($0).example" }
        var zoneText = ""
        for zone in zones {
            zoneText += "$ORIGIN \(zone).\n@ 300 SOA ns hostmaster 1 3600 600 86400 300\n2.0.0.127 300 A 127.0.0.2\n"
        }
        let records = try ZoneFile.parse(zoneText)
        let quoted = zones.map { "\"\($0)\"" }.joined(separator: ", ")
        func measure(_ body: String) async throws -> Double {
            let resolver = ZoneResolver(records: records)
            resolver.delay = .milliseconds(5)
            let engine = try RuleEngine(source: """
                return { connect = { rule("lists", function(ctx) \(body) end) } }
                """, path: "dnsbl-bench.lua", resolvers: SingleResolver(resolver), tracing: false)
            let session = SessionInfo(clientIP: "192.0.2.10")
            let transaction = await engine.beginTransaction(session)
            _ = await engine.evaluate(.connect, in: transaction)  // the zones' test points, once
            let wall = Self.wallTime()
            for _ in 0..<stages { _ = await engine.evaluate(.connect, in: transaction) }
            return (Self.wallTime() - wall) * 1000 / Double(stages)
        }
        let together = try await measure("dns.dnsbl(ctx.client.ip, { \(quoted) })")
        let apart = try await measure("for _, zone in ipairs({ \(quoted) }) do dns.dnsbl(ctx.client.ip, zone) end")
        print("dns.dnsbl, five lists each answering after 5 ms, \(stages) stages:")
        print(String(format: "  %-34@ %8.1f ms per stage", "one call, five zones at once" as NSString, together))
        print(String(format: "  %-34@ %8.1f ms per stage", "five calls, one zone each" as NSString, apart))
    }

    struct Measurement: Sendable {
        var items: Int
        var wallSeconds: Double
        var cpuSeconds: Double
        var perSecond: Double { Double(self.items) / self.wallSeconds }
        var microsPerItem: Double { self.wallSeconds * 1e6 / Double(self.items) }
        var cpuMicrosPerItem: Double { self.cpuSeconds * 1e6 / Double(self.items) }

        static func median(_ runs: [Measurement]) -> Measurement {
            runs.sorted { $0.cpuMicrosPerItem < $1.cpuMicrosPerItem }[runs.count / 2]
        }

        static func best(_ runs: [Measurement]) -> Measurement {
            runs.min { $0.cpuMicrosPerItem < $1.cpuMicrosPerItem }!
        }
    }

    static func cpuTime() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    static func wallTime() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    static func plainSource(root: String) throws -> String {
        try String(contentsOfFile: root + "/Sources/VrulesBenchmarks/plain_policy.lua", encoding: .utf8)
    }

    /// The plain script with `answers["name/TYPE"] = { ... }` built from the zone; each
    /// `run` plays it for a number of transactions.
    final class PlainPolicy {
        let lua = LuaState(memoryLimit: 0)
        let script: Int32
        let answers: Int32

        init(records: [DNSRecord], source: String) throws {
            let lua = self.lua
            guard case .success = lua.load(source: source, chunkName: "@plain_policy.lua") else { fatalError("plain_policy.lua does not load") }
            self.script = lua.makeReference()
            lua.newTable()
            let answers = lua.top()
            var grouped: [String: [DNSRecord]] = [:]
            for record in records { grouped["\(record.name)/\(record.type)", default: []].append(record) }
            for (key, list) in grouped {
                lua.newTable()
                for (index, record) in list.enumerated() {
                    switch record.data {
                    case .a(let ip), .aaaa(let ip): lua.pushString(ip.description)
                    case .ptr(let name), .cname(let name), .ns(let name): lua.pushString(name)
                    case .mx(let preference, let exchange):
                        lua.newTable()
                        lua.pushInteger(Int(preference)); lua.setField("preference", table: -2)
                        lua.pushString(exchange); lua.setField("exchange", table: -2)
                    case .txt(let strings): lua.pushString(String(decoding: strings.joined(), as: UTF8.self))
                    default: lua.pushBoolean(true)
                    }
                    lua.setIndex(index + 1, table: -2)
                }
                lua.setField(named: key, table: answers)
            }
            self.answers = lua.makeReference()
        }

        func run(transactions: Int) throws -> Measurement {
            let lua = self.lua
            lua.pushReference(self.script)
            lua.pushReference(self.answers)
            lua.pushInteger(transactions)
            let wall = EngineBenchmark.wallTime()
            let cpu = EngineBenchmark.cpuTime()
            if case .failure(let error) = lua.protectedCall(arguments: 2, results: 1) { fatalError("plain Lua failed: \(error)") }
            let measurement = Measurement(items: transactions, wallSeconds: EngineBenchmark.wallTime() - wall,
                                          cpuSeconds: EngineBenchmark.cpuTime() - cpu)
            guard lua.integer(at: -1) == transactions else { fatalError("plain Lua accepted \(lua.integer(at: -1) ?? -1) of \(transactions)") }
            lua.pop()
            return measurement
        }
    }
}
