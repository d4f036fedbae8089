/// The outcome of an RFC 7208 check_host() evaluation (`SPFCheck`).
public struct SPFResult: Hashable, Sendable {
    /// RFC 7208 §2.6 results.
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case pass
        case fail
        case softfail
        case neutral
        case none
        case permerror
        case temperror
    }

    public var result: Kind
    /// The domain check_host() was asked about.
    public var domain: String
    /// The term that decided the result (`-all`, `include:_spf.example.com`), in the record
    /// of `domain` or of a domain it redirects to; nil when no mechanism matched.
    public var mechanism: String?
    /// On `fail`, the `exp=` explanation, macro-expanded and sanitised for an SMTP reply
    /// (`SPFExplanation.sanitised`); nil when the record has none or it could not be used.
    public var explanation: String?
    /// Why the result is `permerror`, `temperror` or `none`, for logs and headers.
    public var reason: String?

    public init(result: Kind, domain: String, mechanism: String? = nil, explanation: String? = nil, reason: String? = nil) {
        self.result = result
        self.domain = domain
        self.mechanism = mechanism
        self.explanation = explanation
        self.reason = reason
    }
}

/// Explanations come from DNS, which anyone can publish: before one can reach an SMTP reply
/// it is reduced to printable ASCII (no CR, LF, NUL or other control character that could
/// end a reply line or inject a command) and bounded in length.
public enum SPFExplanation {
    /// Longest explanation kept; an SMTP reply line is at most 512 octets (RFC 5321 §4.5.3.1.5).
    public static let maximumLength = 256

    public static func sanitised(_ text: String) -> String {
        var output = ""
        output.reserveCapacity(min(text.utf8.count, Self.maximumLength))
        for byte in text.utf8 where byte >= 0x20 && byte <= 0x7e {
            output.append(Character(UnicodeScalar(byte)))
            if output.utf8.count == Self.maximumLength { break }
        }
        return output
    }
}
