/// An SMTP reply line: basic code, RFC 3463 enhanced code, text.
public struct SMTPReply: Hashable, Sendable, CustomStringConvertible, Codable {
    public var code: Int
    public var enhanced: String
    public var text: String

    public init(code: Int, enhanced: String, text: String) {
        self.code = code
        self.enhanced = enhanced
        self.text = text
    }

    public var description: String { self.text.isEmpty ? "\(self.code) \(self.enhanced)" : "\(self.code) \(self.enhanced) \(self.text)" }
}

/// How a stage ended.
public enum VerdictKind: String, Hashable, Sendable, Codable, CaseIterable {
    /// The stage passed on a rule's `accept()`.
    case accept
    /// No rule decided: the stage passes by default.
    case next
    case defer_ = "defer"
    case reject

    public var isFailure: Bool { self == .defer_ || self == .reject }
}

public struct Verdict: Hashable, Sendable, CustomStringConvertible {
    public var kind: VerdictKind
    /// The reply a rule chose; nil for `next`, and for `accept()` without a reply.
    public var reply: SMTPReply?

    public init(kind: VerdictKind, reply: SMTPReply? = nil) {
        self.kind = kind
        self.reply = reply
    }

    public var description: String {
        if let reply = self.reply { return "\(self.kind.rawValue) \(reply)" }
        return self.kind.rawValue
    }
}
