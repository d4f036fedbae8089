// RFC 7208 §4.5–§6: choosing the SPF record among a domain's TXT records, and parsing it
// whole before anything is evaluated (a syntax error anywhere is a permerror, §4.6).

/// The qualifier of a mechanism and the result it gives when the mechanism matches.
enum SPFQualifier: Character, Hashable, Sendable {
    case pass = "+"
    case fail = "-"
    case softfail = "~"
    case neutral = "?"

    var result: SPFResult.Kind {
        switch self {
        case .pass: return .pass
        case .fail: return .fail
        case .softfail: return .softfail
        case .neutral: return .neutral
        }
    }
}

/// The CIDR prefix lengths of an `a` or `mx` mechanism (RFC 7208 §5.6 dual-cidr-length).
struct SPFCIDR: Hashable, Sendable {
    var ipv4: Int = 32
    var ipv6: Int = 128

    func prefixLength(for ip: IPAddress) -> Int {
        ip.isIPv4 ? self.ipv4 : self.ipv6
    }
}

enum SPFMechanism: Hashable, Sendable {
    case all
    case include(SPFMacroString)
    /// No domain-spec means the current domain.
    case a(SPFMacroString?, SPFCIDR)
    case mx(SPFMacroString?, SPFCIDR)
    case ptr(SPFMacroString?)
    case ip(network: IPAddress, prefixLength: Int)
    case exists(SPFMacroString)

    /// Whether evaluating it costs DNS queries, counted toward the limit of 10 (§4.6.4).
    var queriesDNS: Bool {
        switch self {
        case .all, .ip: return false
        case .include, .a, .mx, .ptr, .exists: return true
        }
    }

    var domainSpec: SPFMacroString? {
        switch self {
        case .all, .ip: return nil
        case .include(let spec), .exists(let spec): return spec
        case .a(let spec, _), .mx(let spec, _), .ptr(let spec): return spec
        }
    }
}

/// One directive: a qualified mechanism, with its text for reports.
struct SPFDirective: Hashable, Sendable {
    var qualifier: SPFQualifier
    var mechanism: SPFMechanism
    var text: String
}

/// A parsed SPF record: its directives in order and its two known modifiers.
struct SPFRecord: Hashable, Sendable {
    var directives: [SPFDirective]
    var redirect: SPFMacroString?
    var explanation: SPFMacroString?

    /// Whether a term's domain-spec, `redirect=` or `exp=` holds a macro: the record's result
    /// may then depend on more than the IP, the domain and DNS (the sender, the HELO name).
    var usesMacros: Bool {
        self.directives.contains { $0.mechanism.domainSpec?.hasMacro == true }
            || self.redirect?.hasMacro == true || self.explanation?.hasMacro == true
    }

    static let maximumIPv4Prefix = 32
    static let maximumIPv6Prefix = 128

    private static let versionTag = Array("v=spf1".utf8)

    /// Whether `text` (a TXT record's strings, joined) is an SPF version 1 record: exactly
    /// `v=spf1`, ended by a space or the end of the record (§4.5).
    static func isSPFRecord(_ text: String) -> Bool {
        // "v=spf1" in any case, then the end or a space; compared as octets (ASCII letters
        // folded by setting 0x20), with no copy of the text.
        var octets = text.utf8.makeIterator()
        for expected in Self.versionTag {
            guard let octet = octets.next() else { return false }
            let folded = (octet >= 0x41 && octet <= 0x5A) ? octet | 0x20 : octet
            guard folded == expected else { return false }
        }
        guard let next = octets.next() else { return true }
        return next == UInt8(ascii: " ")
    }

    /// Parses a record already known to start with `v=spf1`.
    static func parse(_ text: String) throws(SPFSyntaxError) -> SPFRecord {
        var record = SPFRecord(directives: [], redirect: nil, explanation: nil)
        let terms = text.split(separator: " ", omittingEmptySubsequences: true).dropFirst()
        for term in terms {
            if let modifier = Self.modifierName(of: term) {
                let value = term[term.index(term.startIndex, offsetBy: modifier.count + 1)...]
                switch modifier.lowercased() {
                case "redirect":
                    guard record.redirect == nil else { throw SPFSyntaxError(reason: "more than one redirect= modifier") }
                    record.redirect = try Self.parseDomainSpec(value, in: term)
                case "exp":
                    guard record.explanation == nil else { throw SPFSyntaxError(reason: "more than one exp= modifier") }
                    record.explanation = try Self.parseDomainSpec(value, in: term)
                default:
                    // Unknown modifiers are ignored, but must still be well-formed (§6).
                    _ = try SPFMacroParser.parse(value, explanation: false)
                }
                continue
            }
            record.directives.append(try Self.parseDirective(term))
        }
        return record
    }

    /// The name of a modifier term (`name "=" macro-string`), or nil for a mechanism.
    private static func modifierName(of term: Substring) -> Substring? {
        guard let equals = term.firstIndex(of: "=") else { return nil }
        let name = term[..<equals]
        guard let first = name.first, first.isASCII, first.isLetter else { return nil }
        let valid = name.allSatisfy { character in
            character.isASCII && (character.isLetter || character.isNumber || character == "-"
                                  || character == "_" || character == ".")
        }
        return valid ? name : nil
    }

    private static func parseDirective(_ term: Substring) throws(SPFSyntaxError) -> SPFDirective {
        var body = term
        var qualifier = SPFQualifier.pass
        if let first = body.first, let explicit = SPFQualifier(rawValue: first) {
            qualifier = explicit
            body = body.dropFirst()
        }
        let nameEnd = body.firstIndex(where: { $0 == ":" || $0 == "/" }) ?? body.endIndex
        let name = body[..<nameEnd].lowercased()
        let argument = body[nameEnd...]
        let mechanism: SPFMechanism
        switch name {
        case "all":
            guard argument.isEmpty else { throw SPFSyntaxError(reason: "'all' takes no argument: '\(term)'") }
            mechanism = .all
        case "include":
            mechanism = .include(try Self.requiredDomainSpec(argument, in: term))
        case "exists":
            mechanism = .exists(try Self.requiredDomainSpec(argument, in: term))
        case "ptr":
            mechanism = .ptr(try Self.optionalDomainSpec(argument, in: term))
        case "a", "mx":
            var rest = argument
            let cidr = try Self.parseDualCIDR(&rest, in: term)
            let spec = try Self.optionalDomainSpec(rest, in: term)
            mechanism = name == "a" ? .a(spec, cidr) : .mx(spec, cidr)
        case "ip4", "ip6":
            mechanism = try Self.parseIPNetwork(argument, ipv4: name == "ip4", in: term)
        default:
            throw SPFSyntaxError(reason: "unknown mechanism '\(term)'")
        }
        return SPFDirective(qualifier: qualifier, mechanism: mechanism, text: String(term))
    }

    private static func requiredDomainSpec(_ argument: Substring, in term: Substring) throws(SPFSyntaxError) -> SPFMacroString {
        guard argument.first == ":" else { throw SPFSyntaxError(reason: "'\(term)' needs ':' and a domain") }
        return try Self.parseDomainSpec(argument.dropFirst(), in: term)
    }

    private static func optionalDomainSpec(_ argument: Substring, in term: Substring) throws(SPFSyntaxError) -> SPFMacroString? {
        if argument.isEmpty { return nil }
        return try Self.requiredDomainSpec(argument, in: term)
    }

    /// `domain-spec = macro-string domain-end`, where `domain-end` is `"." toplabel ["."]`
    /// or a macro expansion (§7.1). A numeric top label would be an IP address, not a name.
    static func parseDomainSpec(_ text: Substring, in term: Substring) throws(SPFSyntaxError) -> SPFMacroString {
        guard !text.isEmpty else { throw SPFSyntaxError(reason: "empty domain in '\(term)'") }
        let spec = try SPFMacroParser.parse(text, explanation: false)
        if spec.endsWithMacro { return spec }
        var name = text
        if name.hasSuffix(".") { name = name.dropLast() }
        // `domain-end` is "." toplabel: a lone top label ("a:museum") is not a domain-spec.
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else {
            throw SPFSyntaxError(reason: "domain in '\(term)' has no top label")
        }
        let topLabel = name[name.index(after: dot)...]
        guard Self.isTopLabel(topLabel) else {
            throw SPFSyntaxError(reason: "invalid top label '\(topLabel)' in '\(term)'")
        }
        return spec
    }

    /// `toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )`.
    static func isTopLabel(_ label: Substring) -> Bool {
        guard let first = label.first, let last = label.last, first != "-", last != "-", label.count <= 63 else {
            return false
        }
        let alphanumericOrDash = label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        guard alphanumericOrDash else { return false }
        return label.contains(where: { $0.isLetter }) || label.contains("-")
    }

    /// Removes a trailing `[ "/" ip4-cidr ] [ "//" ip6-cidr ]` from `argument`.
    private static func parseDualCIDR(_ argument: inout Substring, in term: Substring) throws(SPFSyntaxError) -> SPFCIDR {
        var cidr = SPFCIDR()
        if let length = try Self.trailingPrefixLength(&argument, marker: "//", in: term) {
            guard length <= Self.maximumIPv6Prefix else { throw SPFSyntaxError(reason: "IPv6 prefix length over 128 in '\(term)'") }
            cidr.ipv6 = length
        }
        if let length = try Self.trailingPrefixLength(&argument, marker: "/", in: term) {
            guard length <= Self.maximumIPv4Prefix else { throw SPFSyntaxError(reason: "IPv4 prefix length over 32 in '\(term)'") }
            cidr.ipv4 = length
        }
        return cidr
    }

    /// A trailing `marker` followed by digits: the digits as a prefix length (no leading zero,
    /// RFC 7208 §5.6), removed from `argument`. Nil when the argument does not end that way.
    private static func trailingPrefixLength(_ argument: inout Substring, marker: String,
                                             in term: Substring) throws(SPFSyntaxError) -> Int? {
        let digits = argument.reversed().prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty else { return nil }
        let beforeDigits = argument.dropLast(digits.count)
        guard beforeDigits.hasSuffix(marker) else { return nil }
        if marker == "/" && beforeDigits.hasSuffix("//") { return nil }
        let text = String(digits.reversed())
        guard text == "0" || !text.hasPrefix("0"), text.count <= 3, let length = Int(text) else {
            throw SPFSyntaxError(reason: "invalid prefix length in '\(term)'")
        }
        argument = beforeDigits.dropLast(marker.count)
        return length
    }

    private static func parseIPNetwork(_ argument: Substring, ipv4: Bool, in term: Substring) throws(SPFSyntaxError) -> SPFMechanism {
        guard argument.first == ":" else { throw SPFSyntaxError(reason: "'\(term)' needs ':' and a network") }
        var network = argument.dropFirst()
        let maximum = ipv4 ? Self.maximumIPv4Prefix : Self.maximumIPv6Prefix
        var prefixLength = maximum
        if let slash = network.firstIndex(of: "/") {
            let text = network[network.index(after: slash)...]
            guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), text == "0" || !text.hasPrefix("0"),
                  text.count <= 3, let length = Int(text), length <= maximum else {
                throw SPFSyntaxError(reason: "invalid prefix length in '\(term)'")
            }
            prefixLength = length
            network = network[..<slash]
        }
        guard let address = IPAddress(preservingFamily: String(network)), address.isIPv4 == ipv4 else {
            throw SPFSyntaxError(reason: "invalid \(ipv4 ? "IPv4" : "IPv6") network in '\(term)'")
        }
        return .ip(network: address, prefixLength: prefixLength)
    }
}

extension IPAddress {
    /// Whether `self` lies in `network`/`prefixLength`; addresses of different families never do.
    func isIn(network: IPAddress, prefixLength: Int) -> Bool {
        let mine = self.bytes
        let theirs = network.bytes
        guard mine.count == theirs.count else { return false }
        var remaining = prefixLength
        for index in 0..<mine.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xff : ~(0xff >> UInt8(bits))
            if mine[index] & mask != theirs[index] & mask { return false }
            remaining -= bits
        }
        return true
    }
}
