import SwiftASN1

/// Turns a DNSKEY's RSA key (RFC 3110 §2: exponent length, exponent, modulus) into the PKCS#1
/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` DER that
/// swift-crypto's `unsafeDERRepresentation` initialiser reads, the only one that takes the
/// 1024-bit keys still found in DNSSEC.
package enum RSAPublicKeyDER {
    package struct Parts: Sendable {
        package var exponent: ArraySlice<UInt8>
        package var modulus: ArraySlice<UInt8>
        package var modulusBits: Int
    }

    package static func parts(_ key: [UInt8]) -> Parts? {
        var input = key[...]
        guard let first = input.popFirst() else { return nil }
        var exponentLength = Int(first)
        if exponentLength == 0 {
            guard input.count >= 2 else { return nil }
            exponentLength = Int(input[input.startIndex]) << 8 | Int(input[input.startIndex + 1])
            input = input.dropFirst(2)
        }
        guard exponentLength > 0, input.count > exponentLength else { return nil }
        let exponent = Self.trimmed(input.prefix(exponentLength))
        let modulus = Self.trimmed(input.dropFirst(exponentLength))
        guard !exponent.isEmpty, !modulus.isEmpty else { return nil }
        let leading = modulus.first!.leadingZeroBitCount
        return Parts(exponent: exponent, modulus: modulus, modulusBits: modulus.count * 8 - leading)
    }

    package static func der(_ parts: Parts) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(parts.modulus)
            try coder.serialize(parts.exponent)
        }
        return serializer.serializedBytes
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var bytes = bytes
        while bytes.first == 0 { bytes = bytes.dropFirst() }
        return bytes
    }
}
