import OperatorFiles

/// A zone-file error, located so that an editor or CI can point at it.
public struct ZoneFileError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    /// The 1-based line of the offending token; 0 when the file itself could not be read.
    public var line: Int
    public var message: String

    public init(path: String, line: Int, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    /// `path:line: message`, the form compilers use, so editors jump to the line.
    public var description: String {
        if self.line == 0 { return "\(self.path): \(self.message)" }
        return "\(self.path):\(self.line): \(self.message)"
    }
}

/// RFC 1035 §5 master files, the format of DNS fixtures in rule tests and of `vrules run --zone`.
///
/// Supported: `$ORIGIN`, `$TTL`, `;` comments, parentheses spanning lines, `@`, relative and
/// absolute names, an omitted owner (a line starting with a blank repeats the previous owner),
/// an optional TTL (seconds, or BIND units such as `1h30m`) and class `IN` in either order,
/// and the types A, AAAA, MX, PTR, CNAME, TXT, NS, SOA, SRV, DS and DNSKEY (trust anchors). Any type may also be written in
/// the RFC 3597 generic form `TYPE99 \# 3 abcdef`.
///
/// A record without a TTL takes the current `$TTL`, else `defaultTTL` (the RFC 2308 rule,
/// rather than RFC 1035's "the last TTL written", which makes a record's TTL depend on the
/// line above it). Names are normalised with `DNSName.normalize`: the root is `""`, so a
/// Null MX reads `MX 0 .` and has the exchange `""`.
///
/// `$DNSSEC STATUS [NAME] ["reason"]` (a vrules extension, for rule tests) marks the DNSSEC
/// status of the answers about NAME (default: the current origin) and the names below it:
/// `secure`, `insecure`, `bogus` or `indeterminate`, any but the first with an optional reason
/// ("RRSIG expired 2026-11-20"). `parse` and `load` ignore the marks; `parseContents` and
/// `loadContents` return them.
public enum ZoneFile {
    /// Parses master-file text. `origin` is the initial `$ORIGIN` (nil: relative names are
    /// errors until a `$ORIGIN` line); `path` only labels errors.
    public static func parse(
        _ text: String, origin: String? = nil, defaultTTL: UInt32 = 3600, path: String = "<zone>"
    ) throws(ZoneFileError) -> [DNSRecord] {
        var parser = try ZoneFileParser(path: path, origin: origin, defaultTTL: defaultTTL)
        return try parser.parse(Array(text.utf8))
    }

    /// Parses master-file text into its records and its `$DNSSEC` marks.
    public static func parseContents(
        _ text: String, origin: String? = nil, defaultTTL: UInt32 = 3600, path: String = "<zone>"
    ) throws(ZoneFileError) -> ZoneContents {
        var parser = try ZoneFileParser(path: path, origin: origin, defaultTTL: defaultTTL)
        let records = try parser.parse(Array(text.utf8))
        return ZoneContents(records: records, security: parser.securityMarks)
    }

    /// Reads and parses the file at `path` into its records and its `$DNSSEC` marks.
    public static func loadContents(path: String, origin: String? = nil) throws(ZoneFileError) -> ZoneContents {
        let bytes = try Self.readFile(path)
        var parser = try ZoneFileParser(path: path, origin: origin, defaultTTL: 3600)
        let records = try parser.parse(bytes)
        return ZoneContents(records: records, security: parser.securityMarks)
    }

    /// Reads and parses the file at `path`. Errors name the path as given.
    public static func load(path: String, origin: String? = nil) throws(ZoneFileError) -> [DNSRecord] {
        let bytes = try Self.readFile(path)
        var parser = try ZoneFileParser(path: path, origin: origin, defaultTTL: 3600)
        return try parser.parse(bytes)
    }

    /// The largest zone file read: far above any zone a policy is tested on, and a bound on
    /// what a mistyped path can make the process hold.
    public static let maximumSize = 256 << 20

    private static func readFile(_ path: String) throws(ZoneFileError) -> [UInt8] {
        do {
            return try InputFile.bytes(atPath: path, limit: Self.maximumSize)
        } catch {
            throw ZoneFileError(path: path, line: 0, message: "cannot read: \(error.reason)")
        }
    }
}

/// The state carried from one entry to the next: origin, default TTL and last owner.
struct ZoneFileParser {
    private let path: String
    private var origin: String?
    private var defaultTTL: UInt32
    private var lastOwner: String?
    /// What `$DNSSEC` directives marked.
    private(set) var securityMarks = ZoneSecurityMarks()

    /// RFC 2181 §8: TTLs are 31-bit values.
    static let maximumTTL: UInt32 = 0x7fff_ffff

    init(path: String, origin: String?, defaultTTL: UInt32) throws(ZoneFileError) {
        self.path = path
        self.defaultTTL = defaultTTL
        if let origin {
            do throws(DNSNameError) {
                self.origin = try DNSName.normalize(origin)
            } catch {
                throw ZoneFileError(path: path, line: 0, message: "bad origin: \(error)")
            }
        }
    }

    mutating func parse(_ bytes: [UInt8]) throws(ZoneFileError) -> [DNSRecord] {
        var lexer = ZoneFileLexer(bytes: bytes, path: self.path)
        var records: [DNSRecord] = []
        while let entry = try lexer.nextEntry() {
            if let first = entry.tokens.first, !first.quoted, first.text.hasPrefix("$") {
                try self.directive(entry)
            } else {
                records.append(try self.record(entry))
            }
        }
        return records
    }

    private func error(_ line: Int, _ message: String) -> ZoneFileError {
        ZoneFileError(path: self.path, line: line, message: message)
    }

    // MARK: Directives

    private mutating func directive(_ entry: ZoneEntry) throws(ZoneFileError) {
        let tokens = entry.tokens
        let name = tokens[0].text.uppercased()
        switch name {
        case "$ORIGIN":
            guard tokens.count == 2 else {
                throw self.error(entry.line, "$ORIGIN takes exactly one domain name")
            }
            // A relative $ORIGIN is relative to the current one (RFC 1035 §5.1).
            self.origin = try self.domainName(tokens[1])
        case "$TTL":
            guard tokens.count == 2 else {
                throw self.error(entry.line, "$TTL takes exactly one TTL")
            }
            self.defaultTTL = try self.ttl(tokens[1])
        case "$INCLUDE":
            throw self.error(entry.line, "$INCLUDE is not supported; put the records in one file")
        case "$DNSSEC":
            try self.securityDirective(entry)
        default:
            throw self.error(entry.line, "unknown directive \(tokens[0].text)")
        }
    }

    /// `$DNSSEC STATUS [NAME] ["reason"]`.
    private mutating func securityDirective(_ entry: ZoneEntry) throws(ZoneFileError) {
        let tokens = entry.tokens
        let usage = "$DNSSEC takes a status (secure, insecure, bogus, indeterminate), an optional name and an optional quoted reason"
        guard tokens.count >= 2, tokens.count <= 4, !tokens[1].quoted,
              let status = DNSSecurityStatus(rawValue: tokens[1].text.lowercased()) else {
            throw self.error(entry.line, usage)
        }
        var rest = tokens.dropFirst(2)
        var name: String
        if let token = rest.first, !token.quoted {
            name = try self.domainName(token)
            rest = rest.dropFirst()
        } else {
            guard let origin = self.origin else {
                throw self.error(entry.line, "$DNSSEC without a name needs an $ORIGIN")
            }
            name = origin
        }
        var reason: String? = nil
        if let token = rest.first {
            guard token.quoted, rest.count == 1 else { throw self.error(token.line, usage) }
            guard status != .secure else { throw self.error(token.line, "$DNSSEC secure takes no reason") }
            reason = token.text
        }
        if status == .bogus || status == .indeterminate, reason == nil {
            reason = "marked \(status.rawValue) at \(self.path):\(entry.line)"
        }
        guard self.securityMarks.mark(name, DNSSecurity(status, reason: reason)) else {
            throw self.error(entry.line, "$DNSSEC: \(name.isEmpty ? "." : name) is already marked")
        }
    }

    // MARK: Records

    private mutating func record(_ entry: ZoneEntry) throws(ZoneFileError) -> DNSRecord {
        let tokens = entry.tokens
        var index = 0
        let owner: String
        if entry.inheritsOwner {
            guard let last = self.lastOwner else {
                throw self.error(entry.line, "no owner name: this line starts with a blank, but no record precedes it")
            }
            owner = last
        } else {
            owner = try self.domainName(tokens[0])
            index = 1
        }
        self.lastOwner = owner

        // TTL and class, both optional, in either order (RFC 1035 §5.1).
        var ttl: UInt32? = nil
        var sawClass = false
        while index < tokens.count {
            let token = tokens[index]
            if !token.quoted, let first = token.text.utf8.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") {
                guard ttl == nil else { throw self.error(token.line, "expected a record type, found '\(token.text)'") }
                ttl = try self.ttl(token)
            } else if Self.isClass(token) {
                guard token.text.uppercased() == "IN" || token.text.uppercased() == "CLASS1" else {
                    throw self.error(token.line, "class \(token.text) is not supported (only IN)")
                }
                guard !sawClass else { throw self.error(token.line, "expected a record type, found '\(token.text)'") }
                sawClass = true
            } else {
                break
            }
            index += 1
        }
        guard index < tokens.count else {
            throw self.error(tokens[tokens.count - 1].line, "missing record type")
        }
        let typeToken = tokens[index]
        guard !typeToken.quoted, let type = DNSRecordType(name: typeToken.text) else {
            throw self.error(typeToken.line, "unknown record type '\(typeToken.text)'")
        }
        var fields = ZoneFieldReader(
            tokens: Array(tokens[(index + 1)...]), type: type, path: self.path, line: typeToken.line
        )
        let data = try self.recordData(type: type, fields: &fields)
        return DNSRecord(name: owner, ttl: ttl ?? self.defaultTTL, data: data)
    }

    private static func isClass(_ token: ZoneToken) -> Bool {
        guard !token.quoted else { return false }
        let upper = token.text.uppercased()
        switch upper {
        case "IN", "CH", "CS", "HS", "NONE", "ANY":
            return true
        default:
            return upper.hasPrefix("CLASS") && UInt16(upper.dropFirst(5)) != nil
        }
    }

    private func recordData(type: DNSRecordType, fields: inout ZoneFieldReader) throws(ZoneFileError) -> DNSRecordData {
        if let first = fields.peek(), first.isBare("\\#") {
            return try self.genericData(type: type, fields: &fields)
        }
        let data: DNSRecordData
        switch type {
        case .a:
            let token = try fields.next("address")
            guard let address = IPAddress(preservingFamily: token.text), address.isIPv4 else {
                throw self.error(token.line, "bad IPv4 address '\(token.text)'")
            }
            data = .a(address)
        case .aaaa:
            let token = try fields.next("address")
            guard let address = IPAddress(preservingFamily: token.text), !address.isIPv4 else {
                throw self.error(token.line, "bad IPv6 address '\(token.text)'")
            }
            data = .aaaa(address)
        case .ns:
            data = .ns(try self.domainName(try fields.next("name server")))
        case .cname:
            data = .cname(try self.domainName(try fields.next("target")))
        case .ptr:
            data = .ptr(try self.domainName(try fields.next("target")))
        case .mx:
            let preference = try self.number(try fields.next("preference"), as: UInt16.self, what: "MX preference")
            data = .mx(preference: preference, exchange: try self.domainName(try fields.next("exchange")))
        case .txt:
            var strings: [[UInt8]] = [try self.characterString(try fields.next("text"))]
            while let token = fields.nextIfAny() {
                strings.append(try self.characterString(token))
            }
            data = .txt(strings)
        case .soa:
            let mname = try self.domainName(try fields.next("primary name server"))
            let rname = try self.domainName(try fields.next("mailbox"))
            let serial = try self.number(try fields.next("serial"), as: UInt32.self, what: "SOA serial")
            let refresh = try self.timer(try fields.next("refresh"))
            let retry = try self.timer(try fields.next("retry"))
            let expire = try self.timer(try fields.next("expire"))
            let minimum = try self.timer(try fields.next("minimum"))
            data = .soa(SOAData(mname: mname, rname: rname, serial: serial, refresh: refresh,
                                retry: retry, expire: expire, minimum: minimum))
        case .srv:
            let priority = try self.number(try fields.next("priority"), as: UInt16.self, what: "SRV priority")
            let weight = try self.number(try fields.next("weight"), as: UInt16.self, what: "SRV weight")
            let port = try self.number(try fields.next("port"), as: UInt16.self, what: "SRV port")
            data = .srv(priority: priority, weight: weight, port: port,
                        target: try self.domainName(try fields.next("target")))
        case .ds:
            // RFC 4034 §5.3: key tag, algorithm, digest type, then the digest in hex (blanks allowed).
            let keyTag = try self.number(try fields.next("key tag"), as: UInt16.self, what: "DS key tag")
            let algorithm = try self.number(try fields.next("algorithm"), as: UInt8.self, what: "DS algorithm")
            let digestType = try self.number(try fields.next("digest type"), as: UInt8.self, what: "DS digest type")
            var hex: [UInt8] = Array(try fields.next("digest").text.utf8)
            while let token = fields.nextIfAny() { hex += Array(token.text.utf8) }
            guard hex.count % 2 == 0 else { throw self.error(fields.line, "DS digest has an odd number of hex digits") }
            var bytes: [UInt8] = [UInt8(truncatingIfNeeded: keyTag >> 8), UInt8(truncatingIfNeeded: keyTag), algorithm, digestType]
            var index = 0
            while index < hex.count {
                guard let high = Self.hexValue(hex[index]), let low = Self.hexValue(hex[index + 1]) else {
                    throw self.error(fields.line, "DS digest is not hexadecimal")
                }
                bytes.append(high << 4 | low)
                index += 2
            }
            data = .unknown(type: .ds, data: bytes)
        case .dnskey:
            // RFC 4034 §2.2: flags, protocol, algorithm, then the key in base64 (blanks allowed).
            let flags = try self.number(try fields.next("flags"), as: UInt16.self, what: "DNSKEY flags")
            let protocolField = try self.number(try fields.next("protocol"), as: UInt8.self, what: "DNSKEY protocol")
            let algorithm = try self.number(try fields.next("algorithm"), as: UInt8.self, what: "DNSKEY algorithm")
            var text: [UInt8] = Array(try fields.next("public key").text.utf8)
            while let token = fields.nextIfAny() { text += Array(token.text.utf8) }
            guard let key = Base64Text.decode(text), !key.isEmpty else {
                throw self.error(fields.line, "DNSKEY public key is not base64")
            }
            data = .unknown(type: .dnskey, data: [UInt8(truncatingIfNeeded: flags >> 8), UInt8(truncatingIfNeeded: flags),
                                                  protocolField, algorithm] + key)
        default:
            throw self.error(fields.line, "record type \(type) is not supported in text form; write it as '\(type) \\# <length> <hex>' (RFC 3597)")
        }
        try fields.finish()
        return data
    }

    /// RFC 3597 §5: `\# <length> <hex>...`. Types whose data holds domain names must use the
    /// text form, because their wire form may be compressed and is never what an operator means.
    private func genericData(type: DNSRecordType, fields: inout ZoneFieldReader) throws(ZoneFileError) -> DNSRecordData {
        _ = try fields.next("\\#")
        let lengthToken = try fields.next("data length")
        let length = try self.number(lengthToken, as: UInt16.self, what: "RFC 3597 data length")
        var hex: [UInt8] = []
        var lastLine = lengthToken.line
        while let token = fields.nextIfAny() {
            hex.append(contentsOf: token.text.utf8)
            lastLine = token.line
        }
        guard hex.count % 2 == 0 else { throw self.error(lastLine, "odd number of hex digits in RFC 3597 data") }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.count / 2)
        var position = 0
        while position < hex.count {
            guard let high = Self.hexValue(hex[position]), let low = Self.hexValue(hex[position + 1]) else {
                throw self.error(lastLine, "bad hex digit in RFC 3597 data")
            }
            bytes.append(high << 4 | low)
            position += 2
        }
        guard bytes.count == Int(length) else {
            throw self.error(lastLine, "RFC 3597 data is \(bytes.count) bytes long, but its length says \(length)")
        }
        switch type {
        case .a:
            guard bytes.count == 4, let address = IPAddress(bytes: bytes) else { throw self.error(lastLine, "A data must be 4 bytes") }
            return .a(address)
        case .aaaa:
            guard bytes.count == 16, let address = IPAddress(bytes: bytes) else { throw self.error(lastLine, "AAAA data must be 16 bytes") }
            return .aaaa(address)
        case .txt:
            var strings: [[UInt8]] = []
            var offset = 0
            while offset < bytes.count {
                let count = Int(bytes[offset])
                guard offset + 1 + count <= bytes.count else { throw self.error(lastLine, "TXT data overruns its length") }
                strings.append(Array(bytes[(offset + 1)..<(offset + 1 + count)]))
                offset += 1 + count
            }
            guard !strings.isEmpty else { throw self.error(lastLine, "TXT data must hold at least one string") }
            return .txt(strings)
        case .ns, .cname, .ptr, .mx, .soa, .srv:
            throw self.error(lastLine, "write \(type) records in their text form, not RFC 3597's")
        default:
            return .unknown(type: type, data: bytes)
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    // MARK: Fields

    /// `@` is the origin; a name ending in `.` is absolute; anything else is relative to the origin.
    private func domainName(_ token: ZoneToken) throws(ZoneFileError) -> String {
        let text = token.text
        let full: String
        if text == "@" {
            guard let origin = self.origin else {
                throw self.error(token.line, "'@' used with no origin (set $ORIGIN or pass an origin)")
            }
            return origin
        } else if text.hasSuffix(".") {
            full = text
        } else {
            guard let origin = self.origin else {
                throw self.error(token.line, "relative name '\(text)' with no origin (set $ORIGIN or pass an origin)")
            }
            full = origin.isEmpty ? text : "\(text).\(origin)"
        }
        do throws(DNSNameError) {
            return try DNSName.normalize(full)
        } catch {
            throw self.error(token.line, error.description)
        }
    }

    private func number<T: FixedWidthInteger & UnsignedInteger>(
        _ token: ZoneToken, as type: T.Type, what: String
    ) throws(ZoneFileError) -> T {
        guard !token.quoted, let value = T(token.text, radix: 10) else {
            throw self.error(token.line, "bad \(what) '\(token.text)' (expected a number from 0 to \(T.max))")
        }
        return value
    }

    /// A TTL: decimal seconds, or BIND's units (`1w2d3h4m5s`, case-insensitive).
    private func ttl(_ token: ZoneToken) throws(ZoneFileError) -> UInt32 {
        guard let value = Self.duration(token), value <= UInt64(Self.maximumTTL) else {
            throw self.error(token.line, "bad TTL '\(token.text)' (expected seconds up to \(Self.maximumTTL), or units like 1h30m)")
        }
        return UInt32(value)
    }

    /// An SOA timer: the same syntax as a TTL, over the full 32 bits.
    private func timer(_ token: ZoneToken) throws(ZoneFileError) -> UInt32 {
        guard let value = Self.duration(token), value <= UInt64(UInt32.max) else {
            throw self.error(token.line, "bad SOA timer '\(token.text)' (expected seconds, or units like 1h30m)")
        }
        return UInt32(value)
    }

    private static func duration(_ token: ZoneToken) -> UInt64? {
        guard !token.quoted, !token.text.isEmpty else { return nil }
        var total: UInt64 = 0
        var current: UInt64? = nil
        var sawUnit = false
        for byte in token.text.utf8 {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                let next = (current ?? 0) * 10 + UInt64(byte - UInt8(ascii: "0"))
                guard next <= UInt64(UInt32.max) else { return nil }
                current = next
                continue
            }
            let multiplier: UInt64
            switch byte | 0x20 {
            case UInt8(ascii: "s"): multiplier = 1
            case UInt8(ascii: "m"): multiplier = 60
            case UInt8(ascii: "h"): multiplier = 3600
            case UInt8(ascii: "d"): multiplier = 86400
            case UInt8(ascii: "w"): multiplier = 604_800
            default: return nil
            }
            guard let amount = current else { return nil }
            total += amount * multiplier
            guard total <= UInt64(UInt32.max) else { return nil }
            current = nil
            sawUnit = true
        }
        if let amount = current {
            // A bare number after units (`1h30`) is ambiguous; BIND rejects it too.
            guard !sawUnit else { return nil }
            total += amount
        }
        return total
    }

    /// RFC 1035 §5.1 `<character-string>`: `\X` is X, `\DDD` is the byte DDD (decimal); at most 255 bytes.
    private func characterString(_ token: ZoneToken) throws(ZoneFileError) -> [UInt8] {
        let source = Array(token.text.utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(source.count)
        var index = 0
        while index < source.count {
            let byte = source[index]
            guard byte == UInt8(ascii: "\\") else {
                bytes.append(byte)
                index += 1
                continue
            }
            index += 1
            guard index < source.count else {
                throw self.error(token.line, "a backslash ends the string '\(token.text)'")
            }
            if Self.isDigit(source[index]) {
                guard index + 2 < source.count, Self.isDigit(source[index + 1]), Self.isDigit(source[index + 2]) else {
                    throw self.error(token.line, "bad escape in '\(token.text)': \\DDD needs three decimal digits")
                }
                let value = Int(source[index] - 48) * 100 + Int(source[index + 1] - 48) * 10 + Int(source[index + 2] - 48)
                guard value <= 255 else {
                    throw self.error(token.line, "bad escape in '\(token.text)': \\\(value) is over 255")
                }
                bytes.append(UInt8(value))
                index += 3
            } else {
                bytes.append(source[index])
                index += 1
            }
        }
        guard bytes.count <= 255 else {
            throw self.error(token.line, "TXT string is \(bytes.count) bytes long; split it into strings of at most 255")
        }
        return bytes
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}

/// Reads the data fields of one record, and reports the missing or extra ones by name.
struct ZoneFieldReader {
    private let tokens: [ZoneToken]
    private let type: DNSRecordType
    private let path: String
    private var index = 0
    /// The line of the last token seen, for errors about what is missing after it.
    private(set) var line: Int

    init(tokens: [ZoneToken], type: DNSRecordType, path: String, line: Int) {
        self.tokens = tokens
        self.type = type
        self.path = path
        self.line = line
    }

    func peek() -> ZoneToken? {
        self.index < self.tokens.count ? self.tokens[self.index] : nil
    }

    mutating func nextIfAny() -> ZoneToken? {
        guard self.index < self.tokens.count else { return nil }
        let token = self.tokens[self.index]
        self.index += 1
        self.line = token.line
        return token
    }

    mutating func next(_ field: String) throws(ZoneFileError) -> ZoneToken {
        guard let token = self.nextIfAny() else {
            throw ZoneFileError(path: self.path, line: self.line, message: "\(self.type) record is missing its \(field)")
        }
        return token
    }

    func finish() throws(ZoneFileError) {
        if let extra = self.peek() {
            throw ZoneFileError(
                path: self.path, line: extra.line, message: "unexpected '\(extra.text)' after the \(self.type) record's data"
            )
        }
    }
}
