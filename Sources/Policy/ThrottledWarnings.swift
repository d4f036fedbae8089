import Logging

/// Warnings about limits a client can trigger at will (evictions, refused recipients,
/// unknown states), and errors every request may repeat (a rule that fails), logged at
/// warning level or above so they show at every usual log level, but at most once a second
/// per kind: a flood must not turn into a log flood. The line says how many more of its
/// kind happened since the last one.
struct ThrottledWarnings {
    private struct Pending {
        var lastLogged: Double
        var suppressed: Int
        var level: Logger.Level
        var message: Logger.Message
        var metadata: Logger.Metadata
    }

    private var kinds: [String: Pending] = [:]
    var interval: Double = 1

    mutating func warn(_ kind: String, _ message: Logger.Message, metadata: Logger.Metadata, level: Logger.Level = .warning,
                       now: Double, logger: Logger) {
        if var pending = self.kinds[kind], now - pending.lastLogged < self.interval {
            pending.suppressed += 1
            pending.message = message
            pending.metadata = metadata
            self.kinds[kind] = pending
            return
        }
        var metadata = metadata
        if let suppressed = self.kinds[kind]?.suppressed, suppressed > 0 { metadata["more_since_last"] = "\(suppressed)" }
        logger.log(level: level, message, metadata: metadata)
        self.kinds[kind] = Pending(lastLogged: now, suppressed: 0, level: level, message: message, metadata: metadata)
    }

    /// Logs the last suppressed warning of each kind whose interval has passed.
    mutating func flush(now: Double, logger: Logger) {
        for (kind, pending) in self.kinds where pending.suppressed > 0 && now - pending.lastLogged >= self.interval {
            var metadata = pending.metadata
            metadata["more_since_last"] = "\(pending.suppressed)"
            logger.log(level: pending.level, pending.message, metadata: metadata)
            self.kinds[kind] = Pending(lastLogged: now, suppressed: 0, level: pending.level, message: pending.message,
                                       metadata: pending.metadata)
        }
    }
}
