import DNS

/// What the chain of trust concluded about the zone holding a name.
package enum ZoneTrust: Sendable {
    /// The zone `zone` (the closest enclosing zone cut) and its DNSKEY set, proven from an anchor.
    case secure(zone: String, keys: [DNSKEYData])
    /// An unsigned delegation, DS records of unsupported algorithms only, or no anchor above.
    case insecure(String)
    case bogus(String)
    /// A DS or DNSKEY fetch failed; the error is the fetch's.
    case indeterminate(DNSError)
}
