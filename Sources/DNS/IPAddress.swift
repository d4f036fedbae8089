#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address, parsed and printed with the platform's own
/// `inet_pton`/`inet_ntop` so that every textual form a peer may send is accepted.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4([UInt8])
    case v6([UInt8])

    /// Parses any textual form `inet_pton` accepts. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.10`, RFC 4291 §2.5.5.2), which a dual-stack listener or another MTA may
    /// pass for an IPv4 client, is the IPv4 address it carries: the same reverse name
    /// (`in-addr.arpa`), the same A records to confirm it, the same blocklist entries.
    public init?(_ text: String) {
        guard let parsed = IPAddress(preservingFamily: text) else { return nil }
        self = parsed.unmapped
    }

    /// Parses text and keeps the family as written, for data whose family is its meaning
    /// (an AAAA record's address in a zone file, a server address in brackets).
    public init?(preservingFamily text: String) {
        // `inet_pton` reads a C string: text after a NUL would be silently ignored, and
        // "192.0.2.1\0anything" must not pass for an address.
        guard !text.utf8.contains(0) else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(withUnsafeBytes(of: &v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: &v6) { Array($0) })
            return
        }
        return nil
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`); any other
    /// address unchanged.
    public var unmapped: IPAddress {
        guard case .v6(let b) = self, b.count == 16, b[0..<10].allSatisfy({ $0 == 0 }),
              b[10] == 0xff, b[11] == 0xff else { return self }
        return .v4(Array(b[12..<16]))
    }

    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4: self = .v4(bytes)
        case 16: self = .v6(bytes)
        default: return nil
        }
    }

    public var bytes: [UInt8] {
        switch self {
        case .v4(let b), .v6(let b): return b
        }
    }

    public var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    /// The record type that holds addresses of this family.
    public var addressRecordType: DNSRecordType { self.isIPv4 ? .a : .aaaa }

    public var description: String {
        switch self {
        case .v4(let b) where b.count == 4:
            // Dotted decimal written directly: the policy server prints the client's
            // address for every SPF result, and `inet_ntop` needed a buffer on the heap.
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 15) { buffer in
                var count = 0
                for (index, octet) in b.enumerated() {
                    if index > 0 { buffer[count] = UInt8(ascii: "."); count += 1 }
                    if octet >= 100 { buffer[count] = 0x30 + octet / 100; count += 1 }
                    if octet >= 10 { buffer[count] = 0x30 + octet / 10 % 10; count += 1 }
                    buffer[count] = 0x30 + octet % 10
                    count += 1
                }
                return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<count]), as: UTF8.self)
            }
        default:
            let family = self.isIPv4 ? AF_INET : AF_INET6
            let capacity = Int(INET6_ADDRSTRLEN) + 1
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buffer in
                buffer.initialize(repeating: 0)
                self.bytes.withUnsafeBytes { raw in
                    _ = inet_ntop(family, raw.baseAddress, buffer.baseAddress, socklen_t(capacity))
                }
                return String(cString: buffer.baseAddress!)
            }
        }
    }

    public var isLoopback: Bool {
        switch self {
        case .v4(let b): return b[0] == 127
        case .v6(let b):
            if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return true }
            // IPv4-mapped loopback ::ffff:127.x.x.x
            return b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff && b[12] == 127
        }
    }

    /// The name queried for PTR records: `in-addr.arpa` for IPv4, nibbles under `ip6.arpa` for IPv6.
    public var reverseName: String {
        switch self {
        case .v4(let b):
            return "\(b[3]).\(b[2]).\(b[1]).\(b[0]).in-addr.arpa"
        case .v6(let b):
            let hex = Array("0123456789abcdef")
            var labels: [String] = []
            labels.reserveCapacity(33)
            for byte in b.reversed() {
                labels.append(String(hex[Int(byte & 0x0f)]))
                labels.append(String(hex[Int(byte >> 4)]))
            }
            labels.append("ip6.arpa")
            return labels.joined(separator: ".")
        }
    }
}
