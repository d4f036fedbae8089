/// The key tag of a DNSKEY (RFC 4034 Appendix B): how RRSIG and DS name a key. Not unique:
/// a hostile zone can give many keys the same tag, which is why the validator bounds how
/// many keys it tries per tag.
package enum DNSKeyTag {
    /// Algorithm 1 (RSA/MD5) used the key's low bits; it is not supported, so the general
    /// sum (Appendix B) is all that is needed.
    package static func compute(_ rdata: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        for (index, byte) in rdata.enumerated() {
            sum &+= index & 1 == 0 ? UInt32(byte) << 8 : UInt32(byte)
        }
        sum &+= (sum >> 16) & 0xFFFF
        return UInt16(truncatingIfNeeded: sum)
    }
}
