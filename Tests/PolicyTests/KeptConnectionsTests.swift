import NIOCore
import NIOEmbedded
@testable import Policy
import Testing

@Suite("Connections kept by a listener")
struct KeptConnectionsTests {
    @Test("at `kept` a newcomer closes the connection idle the longest, never one being served")
    func evictsIdlestNotBusy() async throws {
        let kept = KeptConnections(kept: 2, service: "test", logger: .policyTests)
        let busy = EmbeddedChannel()
        let idle = EmbeddedChannel()
        try await busy.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        try await idle.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        let busyActivity = kept.admit(busy)
        let idleActivity = kept.admit(idle)
        // The older of the two is deciding a request; the other was answered since.
        busyActivity.markBusy()
        idleActivity.touch()
        _ = kept.admit(EmbeddedChannel())
        #expect(busy.isActive)
        #expect(!idle.isActive)
        // All kept connections busy: the newcomer closes none of them.
        let second = EmbeddedChannel()
        try await second.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        kept.admit(second).markBusy()
        _ = kept.admit(EmbeddedChannel())
        #expect(busy.isActive && second.isActive)
    }

    @Test("the listener's pipeline admits connections as accepted; a connection's initializer gets its activity")
    func admissionInAcceptOrder() async throws {
        let kept = KeptConnections(kept: 1, service: "test", logger: .policyTests)
        let listener = EmbeddedChannel(handler: KeptConnections.Admission(kept))
        let first = EmbeddedChannel()
        let second = EmbeddedChannel()
        try await first.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        try await second.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        try listener.writeInbound(first as any Channel)
        #expect(try listener.readInbound(as: (any Channel).self) === first, "passed on to the acceptor")
        try listener.writeInbound(second as any Channel)
        // The one accepted first was idle the longest.
        #expect(!first.isActive)
        #expect(second.isActive)
        // What the connection's own initializer marks is what the listener weighs.
        kept.activity(of: second).markBusy()
        let third = EmbeddedChannel()
        try listener.writeInbound(third as any Channel)
        #expect(second.isActive, "busy, so never the one closed")
        _ = try? listener.finish()
    }
}
