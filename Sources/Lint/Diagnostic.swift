import Foundation
import OneLineText

/// One finding of `vrules check`, in the shape editors and CI annotate:
/// `path:line:col: error|warning: message [code]`.
public struct Diagnostic: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public enum Severity: String, Hashable, Sendable, Codable {
        case error, warning
    }

    public var path: String
    public var line: Int
    public var column: Int
    public var severity: Severity
    public var message: String
    /// Stable identifier of the check (see `DiagnosticCode`), for suppressions and tests.
    public var code: String

    public init(path: String, line: Int, column: Int, severity: Severity, message: String, code: String) {
        self.path = path
        self.line = line
        self.column = column
        self.severity = severity
        self.message = message
        self.code = code
    }

    /// One line, whatever the path or the message quotes from a script.
    public var description: String {
        OneLine.escaped("\(self.path):\(self.line):\(self.column): \(self.severity.rawValue): \(self.message) [\(self.code)]")
    }

    /// Sorted by path, then position, so output is stable whatever order checks ran in.
    public static func < (lhs: Diagnostic, rhs: Diagnostic) -> Bool {
        (lhs.path, lhs.line, lhs.column, lhs.code, lhs.message) < (rhs.path, rhs.line, rhs.column, rhs.code, rhs.message)
    }

    enum CodingKeys: String, CodingKey {
        case path, line, column, severity, message, code
    }
}

/// The stable codes. They are part of the CLI's contract (JSON consumers match on them).
public enum DiagnosticCode {
    public static let syntaxError = "syntax-error"
    public static let undefinedGlobal = "undefined-global"
    public static let globalWrite = "global-write"
    public static let sharedLocal = "shared-local"
    public static let keptContext = "kept-ctx"
    public static let growingTable = "growing-table"
    public static let shadowedGlobal = "shadowed-global"
    public static let unknownMember = "unknown-member"
    public static let readOnlyWrite = "read-only-write"
    public static let unknownStage = "unknown-stage"
    public static let invalidStage = "invalid-stage"
    public static let duplicateRule = "duplicate-rule"
    public static let notAFunction = "not-a-function"
    public static let invalidRuleName = "invalid-rule-name"
    public static let invalidReply = "invalid-reply"
    public static let replyChanged = "reply-changed"
    public static let dnsAtLoad = "dns-at-load"
    public static let dnsInCallback = "dns-in-callback"
    public static let headerAtEndOfData = "header-at-preq"
    public static let unreachableEntry = "unreachable-entry"
    public static let actionVerdict = "action-verdict"
    public static let numberComparedWithString = "number-compared-with-string"
    public static let emptyDomain = "empty-domain"
    public static let alwaysTrue = "always-true"
    public static let wrongArgumentKind = "address-or-name"
    public static let verdictDropped = "verdict-dropped"
    public static let neverEqual = "never-equal"
    public static let moduleNotFound = "module-not-found"
    public static let invalidTest = "invalid-test"
    public static let loadError = "load-error"
    public static let unreadable = "unreadable-file"
    public static let configSyntax = "config-syntax"
    public static let configUnknownKey = "config-unknown-key"
    public static let configType = "config-type"
    public static let configValue = "config-value"
    public static let dnsblPublicResolver = "dnsbl-public-resolver"
    public static let unknownSocketGroup = "unknown-socket-group"
    public static let invalidZone = "invalid-zone"
}

/// Renders diagnostics as text lines or a JSON array.
public enum DiagnosticFormatter {
    public static func text(_ diagnostics: [Diagnostic]) -> String {
        diagnostics.map { $0.description + "\n" }.joined()
    }

    public static func json(_ diagnostics: [Diagnostic]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(diagnostics) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Nearest-spelling suggestions ("did you mean 'accept'?").

