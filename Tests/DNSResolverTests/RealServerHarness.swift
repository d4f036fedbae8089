import DNS
import Foundation
import VrulesTestSupport
import Testing
@testable import DNSResolver

#if canImport(Glibc)
import Glibc
#endif

/// A missing tool or a server that would not start. The message says what to install, so
/// that a test needing a real server fails loudly instead of passing silently.
struct RealServerError: Error, CustomStringConvertible {
    var description: String
}

/// Processes started by the tests, ended when the test process exits.
private let startedProcesses = ProcessRegistry()

private final class ProcessRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var processes: [Process] = []
    private var directories: [URL] = []
    private var registered = false

    func add(directory: URL) {
        self.lock.lock()
        defer { self.lock.unlock() }
        self.directories.append(directory)
    }

    func add(_ process: Process) {
        self.lock.lock()
        defer { self.lock.unlock() }
        self.processes.append(process)
        if !self.registered {
            self.registered = true
            atexit { startedProcesses.terminateAll() }
        }
    }

    func terminateAll() {
        self.lock.lock()
        let processes = self.processes
        let directories = self.directories
        self.processes = []
        self.directories = []
        self.lock.unlock()
        for process in processes { ServerProcess.stop(process, name: process.arguments?.dropFirst(3).first ?? "server") }
        for directory in directories { try? FileManager.default.removeItem(at: directory) }
    }

    func terminate(_ process: Process) {
        self.lock.lock()
        self.processes.removeAll { $0 === process }
        self.lock.unlock()
        ServerProcess.stop(process, name: process.arguments?.dropFirst(3).first ?? "server")
    }
}

enum RealServers {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/zones")

    static func requireExecutable(_ path: String, package: String) throws {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw RealServerError(description: "\(path) is missing: install the Debian package '\(package)' (apt-get install \(package))")
        }
    }

    static func temporaryDirectory(_ name: String) throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("vrules-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        startedProcesses.add(directory: url)
        return url
    }


    /// Waits until something accepts TCP connections on 127.0.0.1:`port`.
    static func waitForTCP(port: UInt16, process: Process, log: URL, name: String) throws {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            guard process.isRunning else {
                throw RealServerError(description: "\(name) exited: \(Self.tail(log))")
            }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = port.bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if connected { return }
            usleep(50_000)
        }
        throw RealServerError(description: "\(name) did not start listening on port \(port): \(Self.tail(log))")
    }

    static func tail(_ log: URL) -> String {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(8).joined(separator: " | ")
    }

    static func launch(_ executable: String, _ arguments: [String], log: URL) throws -> Process {
        let process = try ServerProcess.launch(executable, arguments, log: log)
        startedProcesses.add(process)
        return process
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let (status, output) = try ServerProcess.runToEnd(executable, arguments)
        guard status == 0 else {
            throw RealServerError(description: "\(executable) \(arguments.joined(separator: " ")) failed: \(output)")
        }
        return output
    }
}

/// Knot DNS serving zones from `Tests/Fixtures/zones` on a loopback port.
final class KnotServer: @unchecked Sendable {
    static let knotd = "/usr/sbin/knotd"
    static let knotc = "/usr/sbin/knotc"

    let port: UInt16
    let directory: URL
    let process: Process
    var address: DNSServerAddress { DNSServerAddress(ip: IPAddress("127.0.0.1")!, port: self.port) }
    var configPath: String { self.directory.appendingPathComponent("knot.conf").path }

    /// `zones` maps a zone apex to its file; those in `signing` are signed automatically.
    init(zones: [(String, URL)], signing: Set<String> = [], directory: URL? = nil) throws {
        try RealServers.requireExecutable(Self.knotd, package: "knot")
        let directory = try directory ?? RealServers.temporaryDirectory("knot")
        let port = try LoopbackPorts.free()
        var config = KnotConfiguration.header(directory: directory, port: port)
        for (apex, file) in zones {
            let copy = directory.appendingPathComponent("\(apex).zone")
            if file.path != copy.path {
                try? FileManager.default.removeItem(at: copy)
                try FileManager.default.copyItem(at: file, to: copy)
            }
            config += "  - domain: \(apex)\n    file: \"\(copy.path)\"\n"
            if signing.contains(apex) { config += "    dnssec-signing: on\n    journal-content: all\n" }
        }
        let configURL = directory.appendingPathComponent("knot.conf")
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        let log = directory.appendingPathComponent("knot.log")
        self.process = try RealServers.launch(Self.knotd, ["-c", configURL.path], log: log)
        self.port = port
        self.directory = directory
        try RealServers.waitForTCP(port: port, process: self.process, log: log, name: "knotd")
    }

    /// The zone's contents as Knot serves them (signed, for a signing zone), one record a line.
    func readZone(_ apex: String) throws -> [String] {
        try RealServers.requireExecutable(Self.knotc, package: "knot")
        let output = try RealServers.run(Self.knotc, ["-c", self.configPath, "zone-read", apex])
        return output.split(separator: "\n").map { line in
            // "[zone.] owner ttl type rdata" → "owner ttl type rdata"
            guard line.hasPrefix("["), let close = line.firstIndex(of: "]") else { return String(line) }
            return String(line[line.index(after: close)...].drop { $0 == " " })
        }
    }

    func stop() { startedProcesses.terminate(self.process) }
}

/// Unbound validating in front of Knot, with trust anchors for the signed test zones.
final class UnboundServer: @unchecked Sendable {
    static let unbound = "/usr/sbin/unbound"

    let port: UInt16
    let process: Process
    /// The anchors Unbound was given ("zone. DNSKEY 257 3 13 KEY"), for vrules' own validator.
    let trustAnchors: [String]
    var address: DNSServerAddress { DNSServerAddress(ip: IPAddress("127.0.0.1")!, port: self.port) }

    init(stubZones: [String], upstream: DNSServerAddress, trustAnchors: [String]) throws {
        self.trustAnchors = trustAnchors
        try RealServers.requireExecutable(Self.unbound, package: "unbound")
        let directory = try RealServers.temporaryDirectory("unbound")
        let port = try LoopbackPorts.free()
        var config = UnboundConfiguration.serverClause(directory: directory, port: port, moduleConfig: "validator iterator")
        config += "    ede: yes\n    val-log-level: 2\n    local-zone: \"test.\" nodefault\n"
        for anchor in trustAnchors { config += "    trust-anchor: \"\(anchor)\"\n" }
        for zone in stubZones {
            config += "stub-zone:\n    name: \"\(zone)\"\n    stub-addr: 127.0.0.1@\(upstream.port)\n"
        }
        let configURL = directory.appendingPathComponent("unbound.conf")
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        let log = directory.appendingPathComponent("unbound.log")
        self.process = try RealServers.launch(Self.unbound, ["-d", "-c", configURL.path], log: log)
        self.port = port
        try RealServers.waitForTCP(port: port, process: self.process, log: log, name: "unbound")
    }
}

/// Runs blocking work (starting processes, polling ports) on a thread of its own, so that it
/// never occupies the two threads of Swift's cooperative pool that every other test needs.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.start()
    }
}

/// The servers shared by every real-server test, started once per test process.
actor SharedRealServers {
    static let shared = SharedRealServers()

    private var knot: Task<Result<KnotServer, RealServerError>, Never>?
    private var dnssec: Task<Result<(KnotServer, UnboundServer), RealServerError>, Never>?

    /// Knot serving the plain test zones.
    func authoritative() async throws -> KnotServer {
        if self.knot == nil {
            self.knot = Task { await onOwnThread { Self.startAuthoritative() } }
        }
        return try await self.knot!.value.get()
    }

    /// Unbound validating `signed.test` (good signatures) and `broken.test` (one RRSIG
    /// corrupted), both served by Knot.
    func validating() async throws -> (knot: KnotServer, unbound: UnboundServer) {
        if self.dnssec == nil {
            self.dnssec = Task { await onOwnThread { Self.startValidating() } }
        }
        let (knot, unbound) = try await self.dnssec!.value.get()
        return (knot, unbound)
    }

    private static func startAuthoritative() -> Result<KnotServer, RealServerError> {
        Result { () throws(RealServerError) -> KnotServer in
            do {
                let zones = ["vrules.test", "2.0.192.in-addr.arpa", "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"]
                return try KnotServer(zones: zones.map { ($0, RealServers.fixtures.appendingPathComponent("\($0).zone")) })
            } catch let error as RealServerError {
                throw error
            } catch {
                throw RealServerError(description: "cannot start knotd: \(error)")
            }
        }
    }

    /// Knot signs both zones once; their signed contents are read back, one signature of
    /// `www.broken.test` is corrupted, and a second Knot serves the result as pre-signed zones.
    private static func startValidating() -> Result<(KnotServer, UnboundServer), RealServerError> {
        Result { () throws(RealServerError) -> (KnotServer, UnboundServer) in
            do {
                let zones = ["signed.test", "broken.test"]
                let signer = try KnotServer(zones: zones.map { ($0, RealServers.fixtures.appendingPathComponent("\($0).zone")) },
                                            signing: Set(zones))
                defer { signer.stop() }
                let directory = try RealServers.temporaryDirectory("knot-signed")
                var anchors: [String] = []
                var files: [(String, URL)] = []
                for zone in zones {
                    var lines = try Self.waitForSignedZone(signer, zone)
                    anchors += lines.filter { $0.contains(" DNSKEY 257 ") }.map { Self.anchor(from: $0) }
                    if zone == "broken.test" {
                        guard let index = lines.firstIndex(where: { $0.hasPrefix("www.broken.test. ") && $0.contains(" RRSIG A ") }) else {
                            throw RealServerError(description: "knotd did not sign www.broken.test")
                        }
                        lines[index] = Self.corruptSignature(lines[index])
                    }
                    let file = directory.appendingPathComponent("\(zone).zone")
                    try ("$ORIGIN \(zone).\n" + lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
                    files.append((zone, file))
                }
                // An unsigned zone too: answered through the validator, but never secure.
                files.append(("vrules.test", RealServers.fixtures.appendingPathComponent("vrules.test.zone")))
                let knot = try KnotServer(zones: files, directory: directory)
                let unbound = try UnboundServer(stubZones: zones + ["vrules.test"], upstream: knot.address, trustAnchors: anchors)
                return (knot, unbound)
            } catch let error as RealServerError {
                throw error
            } catch {
                throw RealServerError(description: "cannot start the DNSSEC servers: \(error)")
            }
        }
    }

    private static func waitForSignedZone(_ knot: KnotServer, _ zone: String) throws -> [String] {
        for _ in 0..<100 {
            // The control socket appears a moment after the DNS port: retry until it answers.
            guard let lines = try? knot.readZone(zone) else {
                usleep(100_000)
                continue
            }
            if lines.contains(where: { $0.contains(" RRSIG A ") }) && lines.contains(where: { $0.contains(" DNSKEY 257 ") }) {
                return lines
            }
            usleep(100_000)
        }
        throw RealServerError(description: "knotd did not sign \(zone) in time")
    }

    /// "signed.test. 300 DNSKEY 257 3 13 KEY" → "signed.test. DNSKEY 257 3 13 KEY"
    private static func anchor(from line: String) -> String {
        let fields = line.split(separator: " ")
        return ([fields[0]] + fields[2...]).joined(separator: " ")
    }

    /// Changes one base64 character in the middle of the signature (the last field).
    private static func corruptSignature(_ line: String) -> String {
        var fields = line.split(separator: " ").map(String.init)
        var signature = Array(fields[fields.count - 1])
        let middle = signature.count / 2
        signature[middle] = signature[middle] == "A" ? "B" : "A"
        fields[fields.count - 1] = String(signature)
        return fields.joined(separator: " ")
    }
}
