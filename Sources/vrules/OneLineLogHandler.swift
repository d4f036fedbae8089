import Logging
import OneLineText

/// The log handler of `vrules serve`: each entry one line on standard error, whatever its
/// message or metadata hold. A rule may log what DNS returned (a blocklist's TXT reason, a
/// record a lying server made up), and the journal splits standard error at newlines: raw,
/// such text would forge entries of its own or repaint the terminal of whoever reads the log.
struct OneLineLogHandler: LogHandler {
    private var wrapped: StreamLogHandler

    init(_ wrapped: StreamLogHandler) {
        self.wrapped = wrapped
    }

    func log(event: LogEvent) {
        var event = event
        let message = event.message.description
        if !OneLine.isOneLine(message) { event.message = "\(OneLine.escaped(message))" }
        event.metadata = event.metadata.map(Self.escaped)
        self.wrapped.log(event: event)
    }

    /// The metadata itself when it is all one-line text (nearly always: no copy is made).
    private static func escaped(_ metadata: Logger.Metadata) -> Logger.Metadata {
        guard metadata.contains(where: { !OneLine.isOneLine($0.key) || !Self.isOneLine($0.value) }) else { return metadata }
        return metadata.reduce(into: [:]) { result, entry in result[OneLine.escaped(entry.key)] = Self.escaped(entry.value) }
    }

    private static func isOneLine(_ value: Logger.MetadataValue) -> Bool {
        switch value {
        case .string(let text): return OneLine.isOneLine(text)
        case .stringConvertible(let convertible): return OneLine.isOneLine(convertible.description)
        case .dictionary(let dictionary): return dictionary.allSatisfy { OneLine.isOneLine($0.key) && Self.isOneLine($0.value) }
        case .array(let array): return array.allSatisfy(Self.isOneLine)
        }
    }

    private static func escaped(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        switch value {
        case .string(let text): return .string(OneLine.escaped(text))
        case .stringConvertible(let convertible): return .string(OneLine.escaped(convertible.description))
        case .dictionary(let dictionary): return .dictionary(Self.escaped(dictionary))
        case .array(let array): return .array(array.map(Self.escaped))
        }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { self.wrapped.metadataProvider }
        set { self.wrapped.metadataProvider = newValue }
    }

    var metadata: Logger.Metadata {
        get { self.wrapped.metadata }
        set { self.wrapped.metadata = Self.escaped(newValue) }
    }

    var logLevel: Logger.Level {
        get { self.wrapped.logLevel }
        set { self.wrapped.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.wrapped[metadataKey: key] }
        set { self.wrapped[metadataKey: OneLine.escaped(key)] = newValue.map(Self.escaped) }
    }
}
