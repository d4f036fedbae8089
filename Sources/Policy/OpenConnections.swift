import Foundation
import NIOCore

/// The connections a server holds, from the moment they are accepted, so that stopping it
/// can close them all. Each accepted connection is an `NIOAsyncChannel` that must be run
/// to its close (`executeThenClose`): one dropped unconsumed is a fatal error, and the
/// listener's stream drops those it still buffers when the listener closes. So every
/// connection is held here from its channel initializer on; its accept loop takes it,
/// and stopping runs the ones never taken to their close. Stopping never cancels the
/// accept loops: it stops accepting, closes the listeners and what is open, and lets each
/// connection's task see its end.
final class OpenConnections: @unchecked Sendable {
    // @unchecked: all mutable state is in `state`, touched only with `lock` held.
    typealias Connection = NIOAsyncChannel<PolicyRequest, ByteBuffer>

    private struct Entry {
        var connection: Connection
        var taken: Bool
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var stopping = false
        var acceptingStopped = false
    }

    // Guarded by `lock`.
    private let lock = NSLock()
    private var state = State()

    private func withLockedState<T>(_ body: (inout State) -> T) -> T {
        self.lock.lock()
        defer { self.lock.unlock() }
        return body(&self.state)
    }

    /// Whether listeners may accept more connections.
    var acceptingStopped: Bool { self.withLockedState { $0.acceptingStopped } }

    /// Stops accepting (the listeners' handlers hold back their reads from now on).
    func stopAccepting() {
        self.withLockedState { $0.acceptingStopped = true }
    }

    /// Holds a connection just accepted; while stopping, it is run to its close at once.
    func add(_ connection: Connection) {
        let stopping = self.withLockedState { state -> Bool in
            if !state.stopping {
                state.entries[ObjectIdentifier(connection.channel)] = Entry(connection: connection, taken: false)
            }
            return state.stopping
        }
        if stopping {
            connection.channel.close(promise: nil)
            Task { try? await connection.executeThenClose { _, _ in } }
        }
    }

    /// Marks a connection as taken by its accept loop; false if it is not held (stopping).
    func take(_ connection: Connection) -> Bool {
        self.withLockedState { state in
            let key = ObjectIdentifier(connection.channel)
            guard state.entries[key] != nil else { return false }
            state.entries[key]?.taken = true
            return true
        }
    }

    func remove(_ connection: Connection) {
        _ = self.withLockedState { $0.entries.removeValue(forKey: ObjectIdentifier(connection.channel)) }
    }

    /// Marks the server as stopping and closes every open connection.
    func closeAll() {
        let channels = self.withLockedState { state -> [Channel] in
            state.stopping = true
            return state.entries.values.map(\.connection.channel)
        }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Runs the connections no accept loop took to their close.
    func closeUntaken() async {
        let untaken = self.withLockedState { state -> [Connection] in
            let untaken = state.entries.values.filter { !$0.taken }.map(\.connection)
            for connection in untaken { state.entries[ObjectIdentifier(connection.channel)] = nil }
            return untaken
        }
        for connection in untaken {
            try? await connection.executeThenClose { _, _ in }
        }
    }
}
