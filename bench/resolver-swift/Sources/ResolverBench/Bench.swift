import Foundation
import DNS
import DNSResolver
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Cold lookups per second with `inFlight` lookups outstanding (every name distinct, answered
/// by a wildcard, so every lookup goes to the server), then cached lookups in ns per lookup.
/// Usage: ResolverBench PORT [COLD_LOOKUPS] [IN_FLIGHT]
enum ResolverBenchmark {
    /// Not on the main actor: every `await` below stays on the cooperative pool, as a
    /// resolver embedded in a server would.
    static func run(arguments: [String]) async {
        guard arguments.count >= 2, let port = UInt16(arguments[1]) else {
            fputs("usage: ResolverBench PORT [COLD_LOOKUPS] [IN_FLIGHT]\n", stderr)
            exit(2)
        }
        let coldLookups = arguments.count > 2 ? Int(arguments[2]) ?? 50_000 : 50_000
        let inFlight = arguments.count > 3 ? Int(arguments[3]) ?? 256 : 256

        let server = DNSServerAddress(ip: IPAddress("127.0.0.1")!, port: port)
        let options = DNSResolverOptions(timeout: .seconds(2), attempts: 2, cacheSize: coldLookups + 16, numConcurrentReqs: 1)
        // EVENT_LOOPS=n runs the resolver on its own group of n event loops (default: NIO's
        // singleton group, one loop per core).
        let loops = Int(getenv("EVENT_LOOPS").map { String(cString: $0) } ?? "") ?? 0
        let group: any EventLoopGroup = loops > 0 ? MultiThreadedEventLoopGroup(numberOfThreads: loops) : MultiThreadedEventLoopGroup.singleton
        let resolver = DNSNetworkResolver(servers: [server], options: options, eventLoopGroup: group)

        func seconds(since start: NIODeadline) -> Double {
            Double((NIODeadline.now() - start).nanoseconds) / 1e9
        }

        // Warm up the event loops and sockets.
        _ = await resolver.resolve(DNSQuestion(name: "warmup.bench.test", type: .a))

        let coldStart = NIODeadline.now()
        let failures = await withTaskGroup(of: Bool.self) { group -> Int in
            var next = 0
            var failures = 0
            while next < min(inFlight, coldLookups) {
                let name = "n\(next).bench.test"
                group.addTask { (try? await resolver.resolve(DNSQuestion(name: name, type: .a)).get()) != nil }
                next += 1
            }
            while let ok = await group.next() {
                if !ok { failures += 1 }
                if next < coldLookups {
                    let name = "n\(next).bench.test"
                    group.addTask { (try? await resolver.resolve(DNSQuestion(name: name, type: .a)).get()) != nil }
                    next += 1
                }
            }
            return failures
        }
        let coldSeconds = seconds(since: coldStart)
        print(String(format: "swift vrules   cold: %8.0f lookups/s  (%d lookups, %d in flight, %d failed, %.2f s)",
                     Double(coldLookups) / coldSeconds, coldLookups, inFlight, failures, coldSeconds))

        // Cached: the same warm name, through the async API and through the synchronous fast path.
        let cachedQuestion = DNSQuestion(name: "n1.bench.test", type: .a)
        let cachedIterations = 2_000_000
        var sink = 0
        let asyncStart = NIODeadline.now()
        for _ in 0..<cachedIterations {
            if case .success(let answer) = await resolver.resolve(cachedQuestion) { sink &+= answer.records.count }
        }
        let asyncSeconds = seconds(since: asyncStart)
        let syncStart = NIODeadline.now()
        for _ in 0..<cachedIterations {
            if case .success(let answer)? = resolver.immediateResult(for: cachedQuestion) { sink &+= answer.records.count }
        }
        let syncSeconds = seconds(since: syncStart)
        print(String(format: "swift vrules cached: %8.0f ns/lookup async resolve(), %6.0f ns/lookup immediateResult() (%.1f M lookups/s)",
                     asyncSeconds * 1e9 / Double(cachedIterations), syncSeconds * 1e9 / Double(cachedIterations),
                     Double(cachedIterations) / syncSeconds / 1e6))
        if sink != 2 * cachedIterations { fputs("unexpected cached answers: \(sink)\n", stderr); exit(1) }
    }
}
