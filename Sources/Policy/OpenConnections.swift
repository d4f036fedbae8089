import NIOConcurrencyHelpers
import NIOCore

/// The connections a server holds, from the moment they are accepted to their close, so
/// that stopping it can end them all. Stopping stops accepting, then asks every open
/// connection to answer what it has read and close; a connection accepted while that
/// happens is closed at once.
final class OpenConnections: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var stopping = false
        var acceptingStopped = false
    }

    private let state = NIOLockedValueBox(State())

    /// Whether listeners may accept more connections.
    var acceptingStopped: Bool { self.state.withLockedValue { $0.acceptingStopped } }

    /// Stops accepting (the listeners' handlers hold back their reads from now on).
    func stopAccepting() {
        self.state.withLockedValue { $0.acceptingStopped = true }
    }

    /// Holds a connection just accepted until its close; false while stopping (the caller
    /// closes it instead of serving it).
    func add(_ channel: any Channel) -> Bool {
        let added = self.state.withLockedValue { state -> Bool in
            guard !state.stopping else { return false }
            state.channels[ObjectIdentifier(channel)] = channel
            return true
        }
        if added {
            channel.closeFuture.whenComplete { _ in
                _ = self.state.withLockedValue { $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
            }
        }
        return added
    }

    /// Marks the server as stopping; returns the connections open now.
    func stopAll() -> [any Channel] {
        self.state.withLockedValue { state in
            state.stopping = true
            return Array(state.channels.values)
        }
    }

    var count: Int { self.state.withLockedValue { $0.channels.count } }
}
