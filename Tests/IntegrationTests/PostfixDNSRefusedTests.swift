import Foundation
import Testing

/// The DNS outage case of `PostfixEndToEndTests`, timed: when knotd is stopped its port is
/// closed, the kernel answers vrules' query with an ICMP port unreachable, and the client gets
/// its 451 4.4.3 at once instead of after the resolver's `(1 + attempts) × timeout` (here
/// 2 × 3 s: far from what a whole SMTP session takes on a loaded machine, so the bound below
/// tells the two apart without depending on the machine's speed).
@Suite("Postfix end to end: a refusing DNS server")
struct PostfixDNSRefusedTests {
    @Test("knotd stopped: 451 4.4.3 without waiting out the resolver's timeout")
    func refusedAtOnce() async throws {
        let environment = try await blocking { try MailEnvironment(name: "postfix-refused", dnsTimeout: "3s") }
        defer { environment.shutdown() }
        let port = environment.smtpPort
        func session(from source: String) async throws -> (SMTPSession, Duration) {
            let started = ContinuousClock.now
            do {
                let session = try await blocking {
                    try SMTPSession.run(port: port, source: source, helo: PostfixEndToEndTests.helo,
                                        from: PostfixEndToEndTests.sender, to: PostfixEndToEndTests.recipient)
                }
                return (session, ContinuousClock.now - started)
            } catch {
                throw SetupError(description: "\(error)\n\(environment.diagnostics)")
            }
        }
        let (before, _) = try await session(from: "127.0.0.10")
        #expect(before.rcpt.code == 250, Comment(rawValue: "SMTP dialogue:\n\(before.transcript)\n\(environment.diagnostics)"))

        environment.stopDNS()
        let (outage, elapsed) = try await session(from: "127.0.0.15")
        let context = Comment(rawValue: "SMTP dialogue:\n\(outage.transcript)\n\(environment.diagnostics)")
        #expect(outage.rcpt.code == 451, context)
        #expect(outage.rcpt.enhancedCode == "4.4.3", context)
        #expect(outage.rcpt.description.contains("Directory server failure"), context)
        // The whole SMTP session, Postfix included, in a third of the 6 s that a lookup against
        // a silent server would take (about 0.3 s here, up to 1 s on a loaded machine).
        #expect(elapsed < .seconds(2), "the session took \(elapsed)\n\(environment.diagnostics)")
    }
}
