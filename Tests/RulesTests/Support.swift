import DNS
import Foundation
import Rules
import Testing

let testZone = """
$ORIGIN test.
$TTL 300
@            SOA ns.test. hostmaster.test. 1 3600 600 86400 300
             NS  ns.test.
ns           A   192.0.2.53
host         A   192.0.2.10
host         AAAA 2001:db8::10
dual         A   192.0.2.12
dual         AAAA 2001:db8::12
v6only       AAAA 2001:db8::13
txtonly      TXT "v=spf1 -all"
mx           MX 10 mx1.mx
mx           MX 10 mx2.mx
mx           MX 20 mx3.mx
mx1.mx       A 192.0.2.21
mx2.mx       A 192.0.2.22
mx3.mx       A 192.0.2.23
implicit     A 192.0.2.30
nullmx       MX 0 .
alias        CNAME mx
srv          SRV 10 5 25 host
slow         A 192.0.2.40
broken       A 192.0.2.41
liar         A 192.0.2.99
forever      2147483647 A 192.0.2.98
$ORIGIN 2.0.192.in-addr.arpa.
10           PTR host.test.
66           PTR liar.test.
67           PTR nowhere.test.
77           PTR broken.test.
$ORIGIN 0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.
0.1          PTR host.test.
9.9          PTR liar.test.
"""

/// A loaded engine over the test zone, and the zone resolver for fault injection.
struct Harness {
    let engine: RuleEngine
    let resolver: ZoneResolver
    /// Where faults go: the zone resolver, or the network backend's server.
    let faults: any FaultInjecting
    private let network: NetworkBackend?

    init(_ source: String, path: String = "test.lua", rulesDirectory: String = ".", zone: String = testZone,
         limits: RuleLimits = RuleLimits()) throws {
        let records = try ZoneFile.parse(zone)
        self.resolver = ZoneResolver(records: records)
        self.faults = self.resolver
        self.network = nil
        self.engine = try RuleEngine(source: source, path: path, rulesDirectory: rulesDirectory,
                                     resolvers: SingleResolver(self.resolver), limits: limits)
    }

    /// The same, with DNS from `backend`.
    init(_ source: String, backend: Backend, zone: String = testZone) async throws {
        let records = try ZoneFile.parse(zone)
        self.resolver = ZoneResolver(records: records)
        switch backend {
        case .zone:
            self.network = nil
            self.faults = self.resolver
            self.engine = try RuleEngine(source: source, path: "test.lua", resolvers: SingleResolver(self.resolver))
        case .network:
            let network = try await NetworkBackend(records: records)
            self.network = network
            self.faults = network.faults
            self.engine = try RuleEngine(source: source, path: "test.lua", resolvers: SingleResolver(network.resolver))
        }
    }

    /// Runs one stage of a fresh transaction.
    func run(_ stage: Stage, _ session: SessionInfo = defaultSession) async -> StageResult {
        let transaction = await self.engine.beginTransaction(session)
        let result = await self.engine.evaluate(stage, in: transaction)
        await self.engine.endTransaction(transaction)
        return result
    }
}

let defaultSession = SessionInfo(
    clientIP: "192.0.2.10", clientPort: 40000, clientName: "host.test", serverIP: "192.0.2.1",
    serverName: "mx.example", helo: "host.test", mailFrom: MailAddress("alice@mx.test"),
    rcpts: [MailAddress("bob@implicit.test")])

/// A script with one rule at `stage` whose body is `body`.
func script(_ stage: Stage = .connect, _ body: String) -> String {
    """
    return {
      \(stage.rawValue) = {
        rule("under test", function(ctx)
          \(body)
        end),
      },
    }
    """
}

func expectLoadError(_ source: String, contains text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try Harness(source)
        Issue.record("expected a load error containing '\(text)'", sourceLocation: sourceLocation)
    } catch {
        #expect("\(error)".contains(text), "\(error)", sourceLocation: sourceLocation)
    }
}
