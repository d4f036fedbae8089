import DNS
import DNSResolver
import Foundation
import NIOCore

/// Validated beside unvalidated lookups of the same signed zone (Knot signs `bench.test`,
/// ECDSA P-256, NSEC), in one run:
/// - cold: distinct names (`u<i>`, `v<i>`, each its own A record and RRSIG), `IN_FLIGHT`
///   outstanding, each an exchange with Knot; validated ones after one warm-up lookup, so
///   the zone's DNSKEY set is trusted already and each answer costs one verification;
/// - cold through a wildcard (`*.w`): distinct names, one signature behind them all, so the
///   validator's verified-signature cache answers after the first;
/// - cached: one warm name asked again and again;
/// and, after the first pair, the floor of the first ratio: one bare verification per second
/// with swift-crypto (`VerificationFloor`, the algorithm of `ALGORITHM`), so (exchange +
/// verification) / exchange.
/// Usage: DNSSECBench PORT [COLD_LOOKUPS] [IN_FLIGHT] [ROUNDS]
enum DNSSECBenchmark {
    static func run(arguments: [String]) async {
        guard arguments.count >= 2, let port = UInt16(arguments[1]) else {
            fputs("usage: DNSSECBench PORT [COLD_LOOKUPS] [IN_FLIGHT] [ROUNDS]\n", stderr)
            exit(2)
        }
        let cold = arguments.count > 2 ? Int(arguments[2]) ?? 20_000 : 20_000
        let inFlight = arguments.count > 3 ? Int(arguments[3]) ?? 64 : 64
        let rounds = arguments.count > 4 ? Int(arguments[4]) ?? 5 : 5
        let server = DNSServerAddress(ip: IPAddress("127.0.0.1")!, port: port)

        // The anchor: the zone's key-signing keys as Knot serves them, once signed (a large
        // zone with RSA keys takes Knot a while: wait up to five minutes).
        let plainOptions = DNSResolverOptions(timeout: .milliseconds(500), attempts: 0, cacheSize: 0, numConcurrentReqs: 1)
        let probe = DNSNetworkResolver(servers: [server], options: plainOptions)
        var anchorRecords: [DNSRecord] = []
        let probeDeadline = NIODeadline.now() + .seconds(300)
        while NIODeadline.now() < probeDeadline {
            if case .success(let answer) = await probe.resolve(DNSQuestion(name: "bench.test", type: .dnskey)) {
                anchorRecords = answer.records.filter { record in
                    if case .unknown(_, let bytes) = record.data { return bytes.count > 4 && bytes[1] & 1 == 1 }
                    return false
                }
                if !anchorRecords.isEmpty { break }
            }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        guard let anchors = DNSTrustAnchors(records: anchorRecords) else {
            fputs("Knot served no key-signing key for bench.test\n", stderr)
            exit(1)
        }

        var validating = DNSResolverOptions(timeout: .seconds(2), attempts: 2, validate: true, cacheSize: cold + 16,
                                            numConcurrentReqs: 1, trustAnchors: anchors)
        validating.dnssecLimits = DNSSECLimits()
        let validated = DNSNetworkResolver(servers: [server], options: validating)
        let unvalidated = DNSNetworkResolver(servers: [server], options: DNSResolverOptions(
            timeout: .seconds(2), attempts: 2, cacheSize: cold + 16, numConcurrentReqs: 1))

        // Warm-up: sockets, and for the validator the zone's DNSKEY set.
        for resolver in [unvalidated, validated] {
            guard case .success(let answer) = await resolver.resolve(DNSQuestion(name: "warmup.w.bench.test", type: .a)) else {
                fputs("warm-up lookup failed\n", stderr)
                exit(1)
            }
            if resolver === validated && answer.security != .secure {
                fputs("the validated warm-up answer is \(answer.security), not secure\n", stderr)
                exit(1)
            }
        }

        let plainOwn = await Self.cold(unvalidated, prefix: "u", suffix: "", count: cold, inFlight: inFlight, label: "unvalidated")
        let validOwn = await Self.cold(validated, prefix: "v", suffix: "", count: cold, inFlight: inFlight, label: "validated  ")
        let plainRate = plainOwn.rate
        let measured = plainOwn.rate / validOwn.rate
        print(String(format: "cold ratio, distinct signatures: validated lookups take %.2fx the time of unvalidated ones (target <= 1.5x); CPU of this process per lookup %.2fx",
                     measured, validOwn.cpu / plainOwn.cpu))
        // The floor of that ratio: an exchange plus one bare verification, in this run.
        let algorithm = ProcessInfo.processInfo.environment["ALGORITHM"] ?? "ecdsap256sha256"
        let floor = await VerificationFloor.measure(algorithm: algorithm)
        print(String(format: "floor: one bare %@ verification (swift-crypto): %.0f/s on one thread (%.0f us each), %.0f/s on %d cores",
                     floor.name, floor.oneThread, 1e6 / floor.oneThread, floor.allCores, floor.cores))
        let floorRatio = 1 + plainRate / floor.allCores
        print(String(format: "floor ratio, distinct signatures: (exchange + one verification) / exchange = %.2fx on %d cores (%.2fx if one thread verified); measured %.2fx = %.2fx the floor",
                     floorRatio, floor.cores, 1 + plainRate / floor.oneThread, measured, measured / floorRatio))
        let extraCPU = validOwn.cpu - plainOwn.cpu
        print(String(format: "CPU of this process, distinct signatures: validated - unvalidated = %.1f us per lookup, of which one verification %.1f us; the rest (validator, larger DO responses) %.1f us",
                     extraCPU, 1e6 / floor.oneThread, extraCPU - 1e6 / floor.oneThread))
        let plainWild = await Self.cold(unvalidated, prefix: "u", suffix: ".w", count: cold, inFlight: inFlight, label: "unvalidated wildcard")
        let validWild = await Self.cold(validated, prefix: "v", suffix: ".w", count: cold, inFlight: inFlight, label: "validated   wildcard")
        print(String(format: "cold ratio, one wildcard signature: validated lookups take %.2fx the time of unvalidated ones (target <= 1.5x); CPU of this process per lookup %.2fx",
                     plainWild.rate / validWild.rate, validWild.cpu / plainWild.cpu))
        // The same pair again, ROUNDS times, alternating, with fresh names each round: on a
        // machine others share, one pair can land on a busy moment; the median says more.
        var ratios: [Double] = []
        var cpuRatios: [Double] = []
        for round in 1..<max(1, rounds) + 1 {
            let plain = await Self.cold(unvalidated, prefix: "r\(round)u", suffix: ".w", count: cold, inFlight: inFlight, label: nil)
            let valid = await Self.cold(validated, prefix: "r\(round)v", suffix: ".w", count: cold, inFlight: inFlight, label: nil)
            ratios.append(plain.rate / valid.rate)
            cpuRatios.append(valid.cpu / plain.cpu)
        }
        if rounds > 0 {
            let sorted = ratios.sorted()
            print("wildcard rounds: " + ratios.map { String(format: "%.2fx", $0) }.joined(separator: " ")
                + String(format: "; median %.2fx, worst %.2fx (load %@)", sorted[sorted.count / 2], sorted.last!, Self.load()))
            let cpuSorted = cpuRatios.sorted()
            print("wildcard rounds, CPU of this process per lookup: " + cpuRatios.map { String(format: "%.2fx", $0) }.joined(separator: " ")
                + String(format: "; median %.2fx", cpuSorted[cpuSorted.count / 2]))
        }
        let plainCached = await Self.cached(unvalidated, name: "u1.bench.test", label: "unvalidated")
        let validCached = await Self.cached(validated, name: "v1.bench.test", label: "validated  ")
        _ = (plainCached, validCached)
    }

    static func seconds(since start: NIODeadline) -> Double { Double((NIODeadline.now() - start).nanoseconds) / 1e9 }

    /// The 1-, 5- and 15-minute load averages, as `uptime` shows them.
    static func load() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "?" }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    struct Cold {
        /// Lookups per second (wall clock).
        var rate: Double
        /// CPU time of this process (resolver, validator, event loops; Knot not included)
        /// per lookup, in microseconds: what other processes on the cores change least.
        var cpu: Double
    }

    /// CPU time of this process so far, in seconds.
    static func processCPU() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Lookups per second; every answer checked (and, when validating, required secure).
    /// Printed with `label` unless it is nil.
    static func cold(_ resolver: DNSNetworkResolver, prefix: String, suffix: String, count: Int, inFlight: Int,
                     label: String?) async -> Cold {
        let validating = resolver.options.validate
        let start = NIODeadline.now()
        let cpuStart = Self.processCPU()
        let failures = await withTaskGroup(of: Bool.self) { group -> Int in
            var next = 0
            var failures = 0
            func add() {
                let question = DNSQuestion(name: "\(prefix)\(next)\(suffix).bench.test", type: .a)
                group.addTask {
                    guard case .success(let answer) = await resolver.resolve(question) else { return false }
                    return !validating || answer.security == .secure
                }
                next += 1
            }
            while next < min(inFlight, count) { add() }
            while let ok = await group.next() {
                if !ok { failures += 1 }
                if next < count { add() }
            }
            return failures
        }
        let elapsed = Self.seconds(since: start)
        let cpu = (Self.processCPU() - cpuStart) * 1e6 / Double(count)
        let rate = Double(count) / elapsed
        if let label {
            print(String(format: "%@ cold: %8.0f lookups/s  (%d lookups, %d in flight, %d failed or not secure, %.2f s, %.1f us CPU/lookup)",
                         label, rate, count, inFlight, failures, elapsed, cpu))
        } else if failures > 0 {
            print("\(failures) of \(count) lookups failed or were not secure")
        }
        return Cold(rate: rate, cpu: cpu)
    }

    static func cached(_ resolver: DNSNetworkResolver, name: String, label: String) async -> Double {
        let question = DNSQuestion(name: name, type: .a)
        let iterations = 1_000_000
        var sink = 0
        let asyncStart = NIODeadline.now()
        for _ in 0..<iterations {
            if case .success(let answer) = await resolver.resolve(question) { sink &+= answer.records.count }
        }
        let asyncSeconds = Self.seconds(since: asyncStart)
        let syncStart = NIODeadline.now()
        for _ in 0..<iterations {
            if case .success(let answer)? = resolver.immediateResult(for: question) { sink &+= answer.records.count }
        }
        let syncSeconds = Self.seconds(since: syncStart)
        print(String(format: "%@ cached: %6.0f ns/lookup async resolve(), %6.0f ns/lookup immediateResult()",
                     label, asyncSeconds * 1e9 / Double(iterations), syncSeconds * 1e9 / Double(iterations)))
        if sink != 2 * iterations { fputs("unexpected cached answers: \(sink)\n", stderr); exit(1) }
        return syncSeconds * 1e9 / Double(iterations)
    }
}
