import CIDN2

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Internationalized domain names (RFC 5890–5891, IDNA2008) converted to the A-label form
/// that DNS carries, through libidn2: the library curl, wget and GnuTLS use, rather than a
/// hand-written Punycode that would have to get the Unicode tables right by itself.
///
/// The conversion applies the UTS #46 mapping first (non-transitional: `ß` stays `ß`, as
/// IDNA2008 says), so that what a user or an SMTPUTF8 client may type — upper case,
/// full-width letters, the ideographic full stop `。` — maps to the one registered name.
public enum IDNName {
    /// Text longer than this is refused before libidn2 sees it: no name of at most 253 octets
    /// in A-label form comes from more (each Unicode scalar is at most 4 octets of UTF-8).
    static let maximumInputLength = 4 * DNSName.maximumLength

    /// The A-label form of `name`. Throws a `DNSNameError` naming `name` and libidn2's reason
    /// when it is not a valid internationalized name.
    public static func toASCII(_ name: String) throws(DNSNameError) -> String {
        guard name.utf8.count <= Self.maximumInputLength else {
            throw DNSNameError(name: name, reason: "name is longer than \(DNSName.maximumLength) characters")
        }
        // libidn2 reads a C string: a NUL would silently cut the name short.
        guard !name.utf8.contains(0) else {
            throw DNSNameError(name: name, reason: "invalid character in name")
        }
        let flags = Int32(IDN2_NFC_INPUT.rawValue) | Int32(IDN2_NONTRANSITIONAL.rawValue)
        var output: UnsafeMutablePointer<UInt8>? = nil
        let status = name.withCString { input in
            input.withMemoryRebound(to: UInt8.self, capacity: name.utf8.count + 1) { bytes in
                idn2_lookup_u8(bytes, &output, flags)
            }
        }
        defer { if let output { idn2_free(output) } }
        guard status == Int32(IDN2_OK.rawValue), let output else {
            let reason = idn2_strerror(status).map { String(cString: $0) } ?? "error \(status)"
            throw DNSNameError(name: name, reason: "not a valid internationalized domain name (IDNA2008): \(reason)")
        }
        return String(cString: output)
    }
}
