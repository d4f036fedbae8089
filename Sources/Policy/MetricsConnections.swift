import NIOConcurrencyHelpers
import NIOCore

/// The metrics endpoint's connections, each with when it last completed a request (or was
/// accepted). At most `kept` stay open: a new connection closes the one idle the longest, so
/// clients that open connections and leave them (or send a request now and then) cannot keep
/// a scraper out, as they could if newcomers waited for a free place.
final class MetricsConnections: Sendable {
    private struct Entry {
        var channel: any Channel
        var lastActive: NIODeadline
    }

    let kept: Int
    private let entries = NIOLockedValueBox([ObjectIdentifier: Entry]())

    init(kept: Int) {
        self.kept = max(1, kept)
    }

    /// Holds a connection just accepted until its close, closing the idlest one if there are
    /// `kept` already.
    func admit(_ channel: any Channel) {
        let evicted = self.entries.withLockedValue { entries -> (any Channel)? in
            var idlest: (any Channel)? = nil
            if entries.count >= self.kept, let oldest = entries.min(by: { $0.value.lastActive < $1.value.lastActive }) {
                idlest = oldest.value.channel
                entries.removeValue(forKey: oldest.key)
            }
            entries[ObjectIdentifier(channel)] = Entry(channel: channel, lastActive: .now())
            return idlest
        }
        evicted?.close(promise: nil)
        channel.closeFuture.whenComplete { _ in
            _ = self.entries.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
        }
    }

    /// A request of `channel` has been answered.
    func touch(_ channel: any Channel) {
        self.entries.withLockedValue { $0[ObjectIdentifier(channel)]?.lastActive = .now() }
    }

    var count: Int { self.entries.withLockedValue { $0.count } }
}
