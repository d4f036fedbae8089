import DNS

/// Where chains of trust start: DS or DNSKEY records for one or more zones, the IANA root
/// KSKs unless `trust_anchor_file` replaces them (as Unbound's `trust-anchor-file` does).
public struct DNSTrustAnchors: Hashable, Sendable {
    /// One zone's anchors. A DNSKEY anchor is trusted as it is; a DS anchor like a parent's DS.
    package struct ZoneAnchors: Hashable, Sendable {
        package var keys: [DNSKEYData] = []
        package var ds: [DSData] = []
    }

    /// By zone name (presentation form, lower-cased, root as "").
    package var zones: [String: ZoneAnchors]

    package init(zones: [String: ZoneAnchors]) { self.zones = zones }

    /// The IANA root key-signing keys (KSK-2017, tag 20326, and KSK-2024, tag 38696), as
    /// Debian's dns-root-data ships them in /usr/share/dns/root.key.
    package static let builtInRootKeys: [DNSKEYData] = [
        "AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU=",
        "AwEAAa96jeuknZlaeSrvyAJj6ZHv28hhOKkx3rLGXVaC6rXTsDc449/cidltpkyGwCJNnOAlFNKF2jBosZBU5eeHspaQWOmOElZsjICMQMC3aeHbGiShvZsx4wMYSjH8e7Vrhbu6irwCzVBApESjbUdpWWmEnhathWu1jo+siFUiRAAxm9qyJNg/wOZqqzL/dL/q8PkcRU5oUKEpUge71M3ej2/7CPqpdVwuMoTvoB+ZOT4YeGyxMvHmbrxlFzGOHOijtzN+u1TQNatX2XBuzZNQ1K+s2CXkPIZo7s6JgZyvaBevYtxPvYLw4z9mR7K2vaF18UYH9Z9GNUUeayffKC73PYc=",
    ].map { DNSKEYData(flags: 257, algorithm: 8, publicKey: Base64Text.decode(Array($0.utf8))!) }

    /// The built-in root anchors.
    public static let ianaRoot = DNSTrustAnchors(zones: ["": ZoneAnchors(keys: Self.builtInRootKeys)])

    /// Anchors from zone-file records: DS and DNSKEY records are kept, by owner; a file
    /// without any is an error for the caller to report (`records` is what `ZoneFile` read).
    public init?(records: [DNSRecord]) {
        var zones: [String: ZoneAnchors] = [:]
        for record in records {
            guard let raw = record.data.rawData else { continue }
            let owner = record.name.lowercased()
            if record.type == .ds, let ds = try? DSData(rdata: raw) {
                zones[owner, default: ZoneAnchors()].ds.append(ds)
            } else if record.type == .dnskey, let key = try? DNSKEYData(rdata: raw) {
                zones[owner, default: ZoneAnchors()].keys.append(key)
            }
        }
        guard !zones.isEmpty else { return nil }
        self.zones = zones
    }

    /// The anchored zone closest above `name` (or `name` itself), if any.
    package func closestZone(to name: String) -> String? {
        var candidate = name
        while true {
            if self.zones[candidate] != nil { return candidate }
            guard !candidate.isEmpty else { return nil }
            candidate = DNSName.parentZone(of: candidate)
        }
    }
}

extension DNSName {
    /// The name with its leftmost label removed ("" above a single label). Escaped dots stay.
    /// Scans octets, not characters: a dot or backslash is never part of a longer UTF-8
    /// sequence, and the validator asks this for every name it walks up.
    package static func parentZone(of name: String) -> String {
        let text = name.utf8
        var escaped = false
        var index = text.startIndex
        while index != text.endIndex {
            let byte = text[index]
            text.formIndex(after: &index)
            if escaped { escaped = false; continue }
            if byte == UInt8(ascii: "\\") { escaped = true; continue }
            if byte == UInt8(ascii: ".") { return String(Substring(text[index...])) }
        }
        return ""
    }
}
