import VrulesTestSupport
import DNS
import Foundation
import NIOCore
import NIOPosix
@testable import Policy
import Rules
import Testing

/// `vrules serve` runs each engine on one of the event loops the policy connections are
/// read on. An SMTP session's transactions must stay with the engine that holds its `ctx`
/// even when Postfix reconnects to the policy service mid-session (after
/// `smtpd_policy_service_max_ttl`, or an error) and the new connection is read on
/// another loop.
@Suite("Engines pinned to event loops")
struct EventLoopShardTests {
    static let rules = """
    return {
      rcpt = { rule("count", function(ctx)
        ctx.vars.rcpts = (ctx.vars.rcpts or 0) + 1
        if ctx.rcpt.local_part == "count" then return reject(reply(550, "5.1.1", "rcpts=" .. ctx.vars.rcpts)) end
      end) },
    }
    """

    @Test("a session's requests over connections read on different loops reach one engine; new sessions stay on their connection's loop")
    func sessionsFollowTheirEngine() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let resolver = ZoneResolver(records: try ZoneFile.parse(policyZone))
        let engines = try loops.map { loop in
            try RuleEngine(source: Self.rules, path: "policy.lua", resolvers: SingleResolver(resolver), tracing: false,
                           executor: loop.executor)
        }
        let service = PolicyService(engines: engines, logger: .policyTests)
        #expect(service.shard(runningOn: loops[0]) == 0)
        #expect(service.shard(runningOn: loops[1]) == 1)
        let server = PolicyServer(service: service, listen: [.tcp(host: "127.0.0.1", port: 0)], group: group, logger: .policyTests)
        let port = try await server.start()[0].port!

        // Accepted connections are spread over both loops.
        let clients = try (0..<4).map { _ in
            let client = try PolicyClient(port: port)
            client.setTimeout(seconds: 10)
            return client
        }
        // One session asked over every connection in turn: its ctx.vars count every recipient.
        let session = ["client_port": "50000"]
        for (index, client) in clients.enumerated() {
            #expect(try await ask(client, request("RCPT", instance: "s1", recipient: "count@x\(index).test", extra: session))
                == "550 5.1.1 rcpts=\(index + 1)")
        }
        // A new session goes to the shard of the loop its first request was read on: with
        // one session per connection, both shards are used.
        var shards: Set<Int> = []
        for (index, client) in clients.enumerated() {
            let attributes = request("RCPT", instance: "n\(index)", recipient: "u@x.test", extra: ["client_port": "\(60000 + index)"])
            #expect(try await ask(client, attributes) == "DUNNO")
            if let shard = service.shardIndex(of: ConnectionKey(PolicyRequest(attributes: attributes))) { shards.insert(shard) }
        }
        #expect(shards == [0, 1])
        #expect(await service.transactionCount == 5)
        // Ended transactions give up their route.
        #expect(try await ask(clients[0], request("END-OF-MESSAGE", instance: "s1", extra: session)) == "DUNNO")
        #expect(service.shardIndex(of: ConnectionKey(PolicyRequest(attributes: request("RCPT", instance: "s1", extra: session)))) == nil)
        await server.stop()
        try await group.shutdownGracefully()
    }
}
