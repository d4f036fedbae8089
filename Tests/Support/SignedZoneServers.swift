import Foundation

/// A signed private DNS hierarchy on loopback, made fresh for a test run:
/// `scripts/dnssec-zones.sh` writes the zones (a root `.`, `test.`, good and broken children)
/// and a trust anchor for the root; one Knot serves every zone as written (pre-signed,
/// nothing re-signed), and Unbound, not validating, forwards `.` to that Knot, as a recursive
/// upstream for a validating stub.
public final class SignedZoneServers: @unchecked Sendable {
    // @unchecked: every stored property is a constant; `Process` is only asked to terminate.
    public static let knotd = "/usr/sbin/knotd"
    public static let unbound = "/usr/sbin/unbound"
    public static let script = CLI.packageRoot.appendingPathComponent("scripts/dnssec-zones.sh")

    /// Where the zones, keys, anchors and server files are.
    public let directory: URL
    public let knotPort: UInt16
    /// The recursive upstream to ask.
    public let unboundPort: UInt16
    /// The root's DS in zone-file syntax (vrules' `trust_anchor_file`).
    public let anchorFile: URL
    /// The same anchor as a `trust-anchors` clause, for `delv -a`.
    public let delvAnchorFile: URL
    /// The zone apexes served, with a trailing dot (`.` for the root).
    public let zones: [String]
    private let processes: [Process]

    /// Makes the zones and starts the servers. Throws with what to install when a tool is
    /// missing, and with the server's log when one does not start.
    public init() throws {
        for (path, package) in [(Self.knotd, "knot"), (Self.unbound, "unbound"), ("/usr/bin/dnssec-signzone", "bind9-utils"),
                                ("/usr/bin/knsec3hash", "knot-dnssecutils")] {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ServerStartFailure("\(path) is missing: install the Debian package '\(package)' (apt-get install -y \(package))")
            }
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-dnssec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Self.makeZones(in: directory)

        let served = try String(contentsOf: directory.appendingPathComponent("zones.list"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let knotPort = try LoopbackPorts.free()
        var knotConfig = KnotConfiguration.header(directory: directory, port: knotPort)
        for entry in served where entry.count == 2 {
            knotConfig += "  - domain: \"\(entry[0])\"\n    file: \"\(entry[1])\"\n"
        }
        let knotConfigURL = directory.appendingPathComponent("knot.conf")
        try knotConfig.write(to: knotConfigURL, atomically: true, encoding: .utf8)
        let knotLog = directory.appendingPathComponent("knot.log")
        let knot = try ServerProcess.launch(Self.knotd, ["-c", knotConfigURL.path], log: knotLog)
        var processes = [knot]
        do {
            try ServerReadiness.waitForTCP(port: knotPort, process: knot, log: knotLog, name: "knotd")
            let unboundPort = try LoopbackPorts.free()
            let unboundConfigURL = directory.appendingPathComponent("unbound.conf")
            try UnboundConfiguration.forwarding(directory: directory, port: unboundPort, upstreamPort: knotPort,
                                                privateZones: ["test."])
                .write(to: unboundConfigURL, atomically: true, encoding: .utf8)
            let unboundLog = directory.appendingPathComponent("unbound.log")
            let unbound = try ServerProcess.launch(Self.unbound, ["-d", "-c", unboundConfigURL.path], log: unboundLog)
            processes.append(unbound)
            try ServerReadiness.waitForTCP(port: unboundPort, process: unbound, log: unboundLog, name: "unbound")
            self.unboundPort = unboundPort
        } catch {
            Self.terminate(processes)
            throw error
        }
        self.directory = directory
        self.knotPort = knotPort
        self.anchorFile = directory.appendingPathComponent("anchors.zone")
        self.delvAnchorFile = directory.appendingPathComponent("delv-anchors.conf")
        self.zones = served.compactMap(\.first)
        self.processes = processes
    }

    /// Ends the servers and removes the directory.
    public func stop() {
        Self.terminate(self.processes)
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// A vrules configuration whose resolver asks this hierarchy's Unbound and validates with
    /// its root anchor.
    public var validatingConfiguration: String {
        """
        [server.dns]
        type = "custom"
        servers = ["127.0.0.1:\(self.unboundPort)"]

        [server.dns.options]
        validate = true
        trust_anchor_file = "\(self.anchorFile.path)"

        """
    }

    private static func makeZones(in directory: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Self.script.path, directory.path]
        let log = directory.appendingPathComponent("dnssec-zones.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        try ChildProcess.start(process)
        guard ChildProcess.waitForExit(process, timeout: 300) else {
            ChildProcess.abort(process)
            throw ServerStartFailure("\(Self.script.path) \(directory.path) did not finish within 300 s: " + ServerReadiness.tail(log))
        }
        guard process.terminationStatus == 0 else {
            throw ServerStartFailure("\(Self.script.path) \(directory.path) failed (status \(process.terminationStatus)): "
                + ServerReadiness.tail(log))
        }
    }

    private static func terminate(_ processes: [Process]) {
        for process in processes { ServerProcess.stop(process, name: process.arguments?.dropFirst(3).first ?? "server") }
    }
}
