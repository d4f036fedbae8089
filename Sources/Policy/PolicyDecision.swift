import Foundation
import Rules

/// The answer to one request: the action line and what led to it.
public struct PolicyDecision: Sendable {
    /// `DUNNO`, `OK`, or `4NN x.y.z text` / `5NN x.y.z text`.
    public var action: String
    public var stage: Stage?
    public var result: StageResult?
    /// True when the answer came from a stage evaluated for an earlier identical request.
    public var reused: Bool

    public static let dunno = PolicyDecision(action: "DUNNO", stage: nil, result: nil, reused: false)

    /// A temporary or permanent refusal (`4NN`/`5NN`).
    /// By the first byte: `String.first` makes a `Character` (grapheme breaking), some 200
    /// instructions per answer.
    var isRefusal: Bool {
        let first = self.action.utf8.first
        return first == UInt8(ascii: "4") || first == UInt8(ascii: "5")
    }
}

extension PolicyDecision {
    /// next and accept pass the request on to Postfix's other restrictions (DUNNO) unless
    /// the server is configured to answer accept with OK; defer and reject carry their reply.
    static func action(for result: StageResult, acceptAction: String) -> String {
        switch result.verdict.kind {
        case .next: return "DUNNO"
        case .accept: return acceptAction
        case .defer_, .reject:
            let reply = result.reply
            return PolicyReplyText.sanitized("\(reply.code) \(reply.enhanced) \(reply.text)")
        }
    }
}

/// Reply text as it may go to Postfix: one line of printable ASCII, at most
/// `maximumLength` bytes. A newline would end the `action=` line and let the rest be
/// read as further attributes; control characters (BEL, ESC, DEL...) would reach the
/// SMTP client; and Postfix prefixes its own text to a reply line limited to 512 bytes.
/// Anything else becomes `?`, runs of blanks one space, and the end is cut off.
public enum PolicyReplyText {
    public static let maximumLength = 400

    /// What Postfix is sent for a refusal with `reply` when it is not the rules' reply as
    /// they wrote it (text beyond printable ASCII, runs of blanks, too long); nil when it
    /// goes as it is, or is no refusal (an accept's reply is never sent). `vrules run` shows
    /// it and `vrules test` compares it, so that neither passes a reply Postfix never sees.
    public static func changedLine(for reply: SMTPReply) -> String? {
        guard (400...599).contains(reply.code) else { return nil }
        let line = reply.description
        let sent = Self.sanitized(line)
        return sent == line ? nil : sent
    }

    /// Why `changedLine` differs from the rules' reply, for the tools that show it.
    public static let changeReason = "a reply goes to Postfix as printable ASCII, blanks collapsed, at most \(maximumLength) characters"

    public static func sanitized(_ text: String) -> String {
        if Self.isSanitized(text) { return text }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(text.utf8.count, self.maximumLength))
        var previousWasSpace = false
        for scalar in text.unicodeScalars {
            let byte: UInt8
            if scalar.value == 0x20 || scalar.value == 0x09 || scalar.value == 0x0A || scalar.value == 0x0D {
                byte = 0x20
            } else if scalar.value > 0x20 && scalar.value < 0x7F {
                byte = UInt8(scalar.value)
            } else {
                byte = UInt8(ascii: "?")
            }
            if byte == 0x20 {
                if previousWasSpace { continue }
                previousWasSpace = true
            } else {
                previousWasSpace = false
            }
            bytes.append(byte)
            if bytes.count >= self.maximumLength { break }
        }
        while bytes.last == 0x20 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `sanitized` would return `text` unchanged (what rules answer almost always):
    /// printable ASCII within the length, no run of spaces, no space at the end.
    private static func isSanitized(_ text: String) -> Bool {
        var text = text
        // Over the contiguous bytes: the UTF-8 view's iterator costs several times as much
        // per byte, on every answer.
        return text.withUTF8 { bytes in
            guard bytes.count <= self.maximumLength else { return false }
            var previous: UInt8 = 0
            for byte in bytes {
                guard byte >= 0x20 && byte < 0x7F, !(byte == 0x20 && previous == 0x20) else { return false }
                previous = byte
            }
            return previous != 0x20
        }
    }
}
