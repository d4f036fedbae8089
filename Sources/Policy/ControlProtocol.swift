import OneLineText

/// What `vrules reload` and `vrules status` and the server's control socket say to each other.
/// The client sends one command on one line (`reload\n`, `status\n`, `status json\n`); the server answers with
/// a status line, `ok`, `failed`, `stopping` or `error`, a space and what happened, then the
/// details one per line (the errors of a failed reload, the lines of the status), and closes
/// the connection.
public enum ControlProtocol {
    public static let reloadCommand = "reload"
    public static let statusCommand = "status"
    /// The status as one line of JSON (`vrules status --json`), for scripts and monitoring.
    public static let statusJSONCommand = "status json"
    static let commands = [reloadCommand, statusCommand, statusJSONCommand]
    /// The most error lines an answer carries (a configuration with more mistakes names the
    /// rest in the server's log); the status in JSON lists as many.
    public static let maximumDetailLines = 100

    /// How the status is given: lines for a person, or one line of JSON.
    public enum StatusFormat: Sendable {
        case text
        case json
    }

    /// What the server answers `status` with, in a format: its lines.
    public typealias StatusSource = @Sendable (StatusFormat) async -> [String]
    /// The longest command line the server reads, its newline apart.
    public static let maximumCommandBytes = 64

    /// `text` split at each line feed (a `String` splits at `"\n"` characters, and `"\r\n"`
    /// is one character, not a line feed).
    public static func lines(_ text: String) -> [String] {
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { String(String.UnicodeScalarView($0)) }
    }

    public enum Status: String, Sendable {
        /// The new rules and configuration are in use.
        case ok
        /// They did not load; the running ones stay. The details say why.
        case failed
        /// The server stopped before it could reload.
        case stopping
        /// The command was not understood.
        case error
    }

    public struct Answer: Equatable, Sendable {
        public var status: Status
        public var summary: String
        public var details: [String]

        public init(status: Status, summary: String, details: [String] = []) {
            self.status = status
            self.summary = summary
            self.details = details
        }

        /// As the server writes it: every line printable, whatever an error message quoted.
        public var encoded: String {
            let details = self.details.prefix(ControlProtocol.maximumDetailLines)
            return ([self.status.rawValue + " " + OneLine.escaped(self.summary)] + details.map(OneLine.escaped))
                .map { $0 + "\n" }.joined()
        }

        /// Reads what the server wrote; nil when it is not an answer.
        public init?(decoding text: String) {
            var lines = ControlProtocol.lines(text)
            if lines.last == "" { lines.removeLast() }
            guard let first = lines.first, let space = first.firstIndex(of: " "),
                  let status = Status(rawValue: String(first[..<space])) else { return nil }
            self.init(status: status, summary: String(first[first.index(after: space)...]), details: Array(lines.dropFirst()))
        }

        static func reloaded(_ outcome: ReloadRequests.Outcome) -> Answer {
            switch outcome {
            case .loaded(let warnings):
                Answer(status: .ok, summary: "the rules and the configuration were reloaded",
                       details: warnings.flatMap { ControlProtocol.lines("warning: " + $0) })
            case .failed(let errors):
                Answer(status: .failed, summary: "the new rules or configuration did not load; the running ones stay",
                       details: ControlProtocol.lines(errors).filter { !$0.isEmpty })
            case .stopping:
                Answer(status: .stopping, summary: "the server is stopping; nothing was reloaded")
            }
        }
    }
}
