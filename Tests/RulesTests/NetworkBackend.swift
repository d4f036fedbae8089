import DNS
import DNSTestSupport
import DNSResolver
import NIOConcurrencyHelpers
import NIOCore
import Rules
import Testing

/// Where a test's DNS answers come from: the zone-file resolver, or the native network
/// resolver asking an in-process authoritative server that serves the same zone data over
/// UDP/TCP. The `dns.*` tests run against both, unchanged.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case zone
    case network

    var testDescription: String { self.rawValue }
}

/// Fault injection, whichever the backend.
protocol FaultInjecting: AnyObject, Sendable {
    func setFault(_ fault: ZoneFault?, for name: String)
    var delay: Duration { get set }
}

extension ZoneResolver: FaultInjecting {}

/// Faults for the scripted server: per name, the reply is dropped (timeout), refused,
/// failed, or delayed.
final class NetworkFaults: FaultInjecting, @unchecked Sendable {
    private let box = NIOLockedValueBox<([String: ZoneFault], Duration)>(([:], .zero))

    func setFault(_ fault: ZoneFault?, for name: String) {
        self.box.withLockedValue { $0.0[(try? DNSName.normalize(name)) ?? name] = fault }
    }

    var delay: Duration {
        get { self.box.withLockedValue { $0.1 } }
        set { self.box.withLockedValue { $0.1 = newValue } }
    }

    func script(records: [DNSRecord]) -> DNSServerScript {
        let authoritative = ScriptedDNSServer.authoritative(records: records)
        return { query, overTCP in
            let name = (query.questions.first?.name).flatMap { try? DNSName.normalize($0) } ?? ""
            let (fault, delay) = self.box.withLockedValue { ($0.0[name], $0.1) }
            var wait = TimeAmount.nanoseconds(Int64(delay.components.seconds) * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000)
            switch fault {
            case .timeout?: return []
            case .servfail?: return [.send(ScriptedDNSServer.reply(to: query, rcode: .servFail), after: wait)]
            case .refused?: return [.send(ScriptedDNSServer.reply(to: query, rcode: .refused), after: wait)]
            case .delay(let extra)?:
                wait = wait + .nanoseconds(Int64(extra.components.seconds) * 1_000_000_000 + extra.components.attoseconds / 1_000_000_000)
            case nil: break
            }
            return authoritative(query, overTCP).map { action in
                if case .send(let message, _) = action { return .send(message, after: wait) }
                return action
            }
        }
    }
}

/// A network resolver and the server it asks, kept alive for one test.
final class NetworkBackend: @unchecked Sendable {
    let server: ScriptedDNSServer
    let resolver: DNSNetworkResolver
    let faults: NetworkFaults

    init(records: [DNSRecord]) async throws {
        let faults = NetworkFaults()
        self.faults = faults
        self.server = try await ScriptedDNSServer.start(script: faults.script(records: records))
        // Timeouts short enough to keep the fault tests quick, long enough for a loaded
        // machine; no cache, so faults set mid-test apply.
        self.resolver = DNSNetworkResolver(servers: [self.server.address],
                                           options: DNSResolverOptions(timeout: .seconds(1), attempts: 1, cacheSize: 0))
    }
}
