import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The connections a listener keeps, each with when it was last active. At most `kept`: a
/// new connection closes the one idle the longest (never one being served). So clients that open connections and
/// leave them (or ask something now and then) cannot keep a newcomer out, as they could if it
/// had to wait for a free place; a client that keeps asking is the last to go. The listener's
/// `ConnectionLimitHandler` still caps what is open at once, above `kept`, for connections
/// that come faster than the evicted ones close.
final class KeptConnections: Sendable {
    /// When a connection was last active: written on its event loop as it is served, read
    /// only when a newcomer needs a place.
    final class Activity: Sendable {
        private let lastNanoseconds: Synchronization.Atomic<UInt64>

        init() {
            self.lastNanoseconds = Synchronization.Atomic(NIODeadline.now().uptimeNanoseconds)
        }

        /// Active now: a request answered.
        func touch() {
            self.lastNanoseconds.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
        }

        /// Serving a request: never the idlest until `touch`.
        func markBusy() {
            self.lastNanoseconds.store(.max, ordering: .relaxed)
        }

        var last: UInt64 { self.lastNanoseconds.load(ordering: .relaxed) }
    }

    private struct Entry {
        var channel: any Channel
        var activity: Activity
    }

    private let kept: Int
    private let entries = NIOLockedValueBox([ObjectIdentifier: Entry]())
    private let evictions: Counter
    private let service: String
    private let logger: Logger

    /// `service` names the counter of evictions, `vrules_SERVICE_connections_evicted_total`,
    /// and is in the debug line each eviction logs.
    init(kept: Int, service: String, logger: Logger) {
        self.kept = max(1, kept)
        self.service = service
        self.logger = logger
        self.evictions = Counter(label: "vrules_\(service)_connections_evicted_total")
    }

    /// Holds a connection just accepted until its close, closing the idlest one first if
    /// `kept` are open and one of them is idle. Called by `Admission` on the listener's loop,
    /// so connections are admitted, and stamped, in the order they were accepted.
    @discardableResult
    func admit(_ channel: any Channel) -> Activity {
        let activity = Activity()
        let evicted = self.entries.withLockedValue { entries -> (any Channel)? in
            var idlest: (any Channel)? = nil
            if entries.count >= self.kept, let oldest = entries.min(by: { $0.value.activity.last < $1.value.activity.last }),
               oldest.value.activity.last != .max {
                idlest = oldest.value.channel
                entries.removeValue(forKey: oldest.key)
            }
            entries[ObjectIdentifier(channel)] = Entry(channel: channel, activity: activity)
            return idlest
        }
        if let evicted {
            self.evictions.increment()
            self.logger.debug("\(self.service) connection idle the longest closed for a newcomer", metadata: [
                "peer": "\(evicted.remoteAddress.map { "\($0)" } ?? "unknown")",
            ])
            evicted.close(promise: nil)
        }
        // `Admission` comes before the listener's `ConnectionLimitHandler`, so this runs
        // before the place is freed: a newcomer never finds a closed connection to evict.
        channel.closeFuture.whenComplete { _ in
            _ = self.entries.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
        }
        return activity
    }

    /// What a connection's handler marks as it serves, from its own initializer. A connection
    /// already evicted (or closed) gets one that nothing reads.
    func activity(of channel: any Channel) -> Activity {
        self.entries.withLockedValue { $0[ObjectIdentifier(channel)]?.activity } ?? Activity()
    }

    /// Admits each connection the listener accepts, first in its server pipeline.
    final class Admission: ChannelInboundHandler, Sendable {
        typealias InboundIn = any Channel
        typealias InboundOut = any Channel

        private let kept: KeptConnections

        init(_ kept: KeptConnections) {
            self.kept = kept
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.kept.admit(Self.unwrapInboundIn(data))
            context.fireChannelRead(data)
        }
    }

}
