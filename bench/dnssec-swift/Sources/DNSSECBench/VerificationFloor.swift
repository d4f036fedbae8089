import Crypto
import Foundation
import NIOCore

/// The crypto floor of a validated lookup whose answer has its own signature: one bare P-256
/// verification through swift-crypto, done as the validator does it (the r‖s signature read
/// with `rawRepresentation`, SHA-256 over the signed octets, the decoded key reused), with
/// nothing of DNS around it. Measured in the same run as the lookups, on one thread and on
/// every core, so that (exchange + verification) / exchange can be set beside the measured
/// ratio.
enum VerificationFloor {
    struct Rates {
        var oneThread: Double
        var allCores: Double
        var cores: Int
    }

    /// Verifications per second, for about `seconds` on one thread, then on every core.
    static func measure(signedOctets: Int = 120, seconds: Double = 1.0) async -> Rates {
        let key = P256.Signing.PrivateKey()
        let data = [UInt8]((0..<signedOctets).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        let signature = try! key.signature(for: data).rawRepresentation
        let publicKey = key.publicKey
        let single = Self.run(publicKey: publicKey, signature: Array(signature), data: data, seconds: seconds)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let counts = await withTaskGroup(of: Double.self) { group -> [Double] in
            for _ in 0..<cores {
                group.addTask { Self.run(publicKey: publicKey, signature: Array(signature), data: data, seconds: seconds).count }
            }
            var counts: [Double] = []
            for await count in group { counts.append(count) }
            return counts
        }
        return Rates(oneThread: single.count / single.seconds, allCores: counts.reduce(0, +) / seconds, cores: cores)
    }

    private static func run(publicKey: P256.Signing.PublicKey, signature: [UInt8], data: [UInt8],
                            seconds: Double) -> (count: Double, seconds: Double) {
        let start = NIODeadline.now()
        let end = start + .nanoseconds(Int64(seconds * 1e9))
        var count = 0
        var valid = 0
        repeat {
            for _ in 0..<50 {
                if let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
                   publicKey.isValidSignature(ecdsa, for: SHA256.hash(data: data)) {
                    valid += 1
                }
                count += 1
            }
        } while NIODeadline.now() < end
        if valid != count { fputs("the floor's signature did not verify\n", stderr); exit(1) }
        return (Double(count), Double((NIODeadline.now() - start).nanoseconds) / 1e9)
    }
}
