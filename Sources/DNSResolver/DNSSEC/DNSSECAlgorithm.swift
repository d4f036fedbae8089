/// The DNSSEC signing algorithms this validator implements (RFC 8624 §3.1 "MUST" and
/// "RECOMMENDED" for validation, less the ones swift-crypto lacks: Ed448 is not supported).
/// A DS or key of any other algorithm is ignored, so a zone signed only with those is
/// insecure rather than bogus (RFC 4035 §5.2).
package enum DNSSECAlgorithm: UInt8, Sendable, CaseIterable {
    case rsaSHA1 = 5
    case rsaSHA1NSEC3 = 7
    case rsaSHA256 = 8
    case rsaSHA512 = 10
    case ecdsaP256SHA256 = 13
    case ecdsaP384SHA384 = 14
    case ed25519 = 15

    package var isRSA: Bool {
        switch self {
        case .rsaSHA1, .rsaSHA1NSEC3, .rsaSHA256, .rsaSHA512: return true
        default: return false
        }
    }

    /// Mnemonics as in the IANA registry, for traces.
    package static func name(_ number: UInt8) -> String {
        switch number {
        case 5: return "RSASHA1"
        case 7: return "RSASHA1-NSEC3-SHA1"
        case 8: return "RSASHA256"
        case 10: return "RSASHA512"
        case 13: return "ECDSAP256SHA256"
        case 14: return "ECDSAP384SHA384"
        case 15: return "ED25519"
        case 16: return "ED448"
        default: return "algorithm \(number)"
        }
    }
}

/// DS digest types (RFC 4509, RFC 6605): SHA-1, SHA-256, SHA-384.
package enum DSDigestType: UInt8, Sendable, CaseIterable {
    case sha1 = 1
    case sha256 = 2
    case sha384 = 4
}
