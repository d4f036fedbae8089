import Crypto
import Foundation
import NIOCore
import _CryptoExtras

/// The crypto floor of a validated lookup whose answer has its own signature: one bare
/// verification through swift-crypto, done as the validator does it (the decoded key reused;
/// for ECDSA the r‖s signature read with `rawRepresentation`, SHA-256 over the signed octets;
/// for RSA PKCS#1 v1.5 over a SHA-256 digest), with nothing of DNS around it, for the
/// algorithm Knot signs with. Measured in the same run as the lookups, on one thread and on
/// every core, so that (exchange + verification) / exchange can be set beside the measured
/// ratio.
enum VerificationFloor {
    struct Rates {
        var name: String
        var oneThread: Double
        var allCores: Double
        var cores: Int
    }

    /// One signature and the check the validator would make of it.
    private struct Check: @unchecked Sendable {
        var name: String
        var verify: @Sendable () -> Bool
    }

    /// `algorithm` is Knot's name for it, as `ALGORITHM=` gives it to the script.
    private static func check(algorithm: String, data: [UInt8]) throws -> Check {
        switch algorithm {
        case "rsasha256":
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let signature = Array(try key.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5).rawRepresentation)
            let publicKey = key.publicKey
            return Check(name: "RSA/SHA-256 2048-bit") {
                publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: data),
                                           padding: .insecurePKCS1v1_5)
            }
        case "ed25519":
            let key = Curve25519.Signing.PrivateKey()
            let signature = Array(try key.signature(for: data))
            let publicKey = key.publicKey
            return Check(name: "Ed25519") { publicKey.isValidSignature(signature, for: data) }
        default:
            let key = P256.Signing.PrivateKey()
            let signature = Array(try key.signature(for: data).rawRepresentation)
            let publicKey = key.publicKey
            return Check(name: "P-256") {
                guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
                return publicKey.isValidSignature(ecdsa, for: SHA256.hash(data: data))
            }
        }
    }

    /// Verifications per second, for about `seconds` on one thread, then on every core.
    static func measure(algorithm: String, signedOctets: Int = 120, seconds: Double = 1.0) async -> Rates {
        let data = [UInt8]((0..<signedOctets).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        guard let check = try? Self.check(algorithm: algorithm, data: data) else {
            fputs("cannot sign for the floor with \(algorithm)\n", stderr)
            exit(1)
        }
        let single = Self.run(check, seconds: seconds)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let counts = await withTaskGroup(of: Double.self) { group -> [Double] in
            for _ in 0..<cores {
                group.addTask { Self.run(check, seconds: seconds).count }
            }
            var counts: [Double] = []
            for await count in group { counts.append(count) }
            return counts
        }
        return Rates(name: check.name, oneThread: single.count / single.seconds, allCores: counts.reduce(0, +) / seconds, cores: cores)
    }

    private static func run(_ check: Check, seconds: Double) -> (count: Double, seconds: Double) {
        let start = NIODeadline.now()
        let end = start + .nanoseconds(Int64(seconds * 1e9))
        var count = 0
        var valid = 0
        repeat {
            for _ in 0..<50 {
                if check.verify() { valid += 1 }
                count += 1
            }
        } while NIODeadline.now() < end
        if valid != count { fputs("the floor's signature did not verify\n", stderr); exit(1) }
        return (Double(count), Double((NIODeadline.now() - start).nanoseconds) / 1e9)
    }
}
