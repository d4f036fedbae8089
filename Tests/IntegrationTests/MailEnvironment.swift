import Foundation
import VrulesTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Everything one end-to-end test talks to, in a temporary directory:
///
/// - Knot DNS on a free loopback port, authoritative for `postfix.test` and
///   `127.in-addr.arpa` (Tests/Fixtures/postfix), and configured for
///   `14.0.0.127.in-addr.arpa` with no zone file, so that it answers SERVFAIL there;
/// - `vrules serve` on a free port with the shipped default policy (rules/main.lua and
///   rules/lib/checks.lua), except that only 127.0.0.1 counts as a trusted loopback client,
///   and a `vrules.toml` whose `[server.dns]` is that Knot (500 ms timeout unless the test
///   asks for another, one retry);
/// - a private Postfix (`postfix -c DIR`) on a free loopback port, chroot off, asking
///   `vrules serve` through `check_policy_service` in `smtpd_recipient_restrictions`,
///   relaying `rcpt.postfix.test` to the discard transport.
///
/// Teardown (`shutdown()`, also at process exit) stops Postfix, then vrules and Knot. A
/// guard process does the same if the test process dies without running its exit handlers.
final class MailEnvironment: @unchecked Sendable {
    /// Where Postfix asks vrules.
    enum Restrictions: Sendable, Equatable {
        /// `check_policy_service` in `smtpd_recipient_restrictions`, Postfix's default
        /// `smtpd_delay_reject = yes`.
        case recipient
        /// A proxy in front of Postfix: `check_policy_service` only in
        /// `smtpd_client_restrictions`, `smtpd_delay_reject = no`, and loopback clients may
        /// send XCLIENT. 127.0.0.1 itself is trusted (`permit_mynetworks`), so only the
        /// client XCLIENT hands over is judged.
        case clientWithXCLIENT
        /// As Debian runs it: smtpd chrooted in the queue directory asks
        /// `check_policy_service unix:private/vrules` in `smtpd_recipient_restrictions`, and
        /// vrules serve listens on that socket with `socket_mode = "0660"` and
        /// `socket_group = "postfix"` (Postfix's smtpd runs as `postfix`).
        case recipientOverChrootedSocket
    }

    static let postfix = "/usr/sbin/postfix"
    static let knotd = "/usr/sbin/knotd"

    let directory: URL
    private(set) var knotPort: UInt16 = 0
    private(set) var policyPort: UInt16 = 0
    private(set) var smtpPort: UInt16 = 0
    private var knot: Process?
    private var vrules: Process?
    private var guardProcess: Process?
    private var postfixStarted = false
    private let lock = NSLock()
    private var isShutDown = false
    let restrictions: Restrictions
    /// The resolver's `timeout` in vrules.toml.
    let dnsTimeout: String

    var postfixConfig: URL { self.directory.appendingPathComponent("postfix/etc") }
    var maillog: URL { self.directory.appendingPathComponent("postfix/maillog") }
    var vrulesLog: URL { self.directory.appendingPathComponent("vrules.log") }
    var knotLog: URL { self.directory.appendingPathComponent("knot/knot.log") }
    /// The policy socket of `.recipientOverChrootedSocket`, inside Postfix's queue directory.
    var policySocket: URL { self.directory.appendingPathComponent("postfix/queue/private/vrules") }

    /// `[policy] max_connections` in vrules.toml, when not the default.
    let maxConnections: Int?
    /// The most smtpd processes at once (master.cf's maxproc), when not Postfix's default.
    let smtpdProcesses: Int?
    /// A rule script in place of the shipped rules/main.lua (its rules/lib/checks.lua stays).
    let rules: String?
    /// `[policy] dry_run = true`: refusals logged and answered DUNNO.
    let dryRun: Bool

    /// Starts everything, or stops what was started and throws.
    init(name: String, restrictions: Restrictions = .recipient, dnsTimeout: String = "500ms",
         maxConnections: Int? = nil, smtpdProcesses: Int? = nil, rules: String? = nil, dryRun: Bool = false) throws {
        self.restrictions = restrictions
        self.rules = rules
        self.dryRun = dryRun
        self.dnsTimeout = dnsTimeout
        self.maxConnections = maxConnections
        self.smtpdProcesses = smtpdProcesses
        // Missing packages first: the message names the package to install.
        try Harness.requireExecutable(Self.postfix, package: "postfix")
        try Harness.requireExecutable(Self.knotd, package: "knot")
        try Harness.requireExecutable(CLI.binary.path, package: "(none: build vrules with swift build)")
        self.directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("vrules-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        Environments.register(self)
        do {
            try self.startGuard()
            try self.startKnot()
            try self.startVrules()
            try self.startPostfix()
        } catch {
            let diagnostics = self.diagnostics
            self.shutdown()
            throw SetupError(description: "\(error)\n\(diagnostics)")
        }
    }

    // MARK: Knot

    private func startKnot() throws {
        let directory = self.directory.appendingPathComponent("knot")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.knotPort = try LoopbackPorts.free()
        var config = KnotConfiguration.header(directory: directory, port: self.knotPort)
        for zone in ["postfix.test", "127.in-addr.arpa"] {
            let source = Harness.fixtures.appendingPathComponent("\(zone).zone")
            let copy = directory.appendingPathComponent("\(zone).zone")
            try FileManager.default.copyItem(at: source, to: copy)
            config += "  - domain: \(zone)\n    file: \"\(copy.path)\"\n"
        }
        // Configured but without a zone file: Knot answers SERVFAIL for every name in it.
        config += "  - domain: 14.0.0.127.in-addr.arpa\n    file: \"\(directory.path)/missing.zone\"\n"
        let configURL = directory.appendingPathComponent("knot.conf")
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        let knot = try Harness.launch(Self.knotd, ["-c", configURL.path], log: self.knotLog, directory: directory)
        self.lock.withLock { self.knot = knot }
        try Harness.waitForTCP(port: self.knotPort, process: knot, log: self.knotLog, name: "knotd")
        // Listening comes before loading: wait until both zones answer.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let log = (try? String(contentsOf: self.knotLog, encoding: .utf8)) ?? ""
            if log.contains("[postfix.test.] loaded") && log.contains("[127.in-addr.arpa.] loaded") { return }
            usleep(50_000)
        }
        throw SetupError(description: "knotd did not load the test zones: \(Harness.tail(self.knotLog))")
    }

    /// Ends knotd: from now on every DNS query of vrules times out (a DNS outage).
    func stopDNS() {
        let knot = self.lock.withLock { () -> Process? in
            defer { self.knot = nil }
            return self.knot
        }
        if let knot { Harness.stop(knot, name: "knotd") }
    }

    // MARK: vrules serve

    private func startVrules() throws {
        let rules = self.directory.appendingPathComponent("rules")
        try FileManager.default.createDirectory(at: rules.appendingPathComponent("lib"), withIntermediateDirectories: true)
        let shipped = Harness.packageRoot.appendingPathComponent("rules")
        if let script = self.rules {
            try script.write(to: rules.appendingPathComponent("main.lua"), atomically: true, encoding: .utf8)
        } else {
            try FileManager.default.copyItem(at: shipped.appendingPathComponent("main.lua"), to: rules.appendingPathComponent("main.lua"))
        }
        // The shipped policy trusts every loopback client (127.0.0.0/8), and every SMTP
        // client here is on loopback: trust only 127.0.0.1, keep everything else as shipped.
        var checks = try String(contentsOf: shipped.appendingPathComponent("lib/checks.lua"), encoding: .utf8)
        guard checks.contains("function checks.is_loopback("), let end = checks.range(of: "return checks", options: .backwards) else {
            throw SetupError(description: "rules/lib/checks.lua no longer defines checks.is_loopback or ends with 'return checks': update \(#filePath)")
        }
        checks.replaceSubrange(end, with: """
            -- Tests/IntegrationTests: the test's SMTP clients use 127.0.0.x source addresses.
            function checks.is_loopback(ip) return ip == "127.0.0.1" end

            return checks
            """)
        try checks.write(to: rules.appendingPathComponent("lib/checks.lua"), atomically: true, encoding: .utf8)

        let config = self.directory.appendingPathComponent("vrules.toml")
        try """
            [server.dns]
            type = "custom"
            servers = ["127.0.0.1:\(self.knotPort)"]

            [server.dns.options]
            timeout = "\(self.dnsTimeout)"
            attempts = 1
            """.write(to: config, atomically: true, encoding: .utf8)
        if let maxConnections = self.maxConnections {
            guard self.restrictions == .recipient else {
                throw SetupError(description: "maxConnections is only written for .recipient")
            }
            try "\n[policy]\nmax_connections = \(maxConnections)".appendLine(to: config)
        }
        if self.dryRun {
            guard self.maxConnections == nil else { throw SetupError(description: "dryRun and maxConnections: one [policy] table") }
            try "\n[policy]\ndry_run = true".appendLine(to: config)
        }

        if case .recipientOverChrootedSocket = self.restrictions {
            // The socket goes where the chrooted smtpd looks: <queue>/private/vrules.
            let privateDirectory = self.policySocket.deletingLastPathComponent()
            try FileManager.default.createDirectory(at: privateDirectory, withIntermediateDirectories: true)
            // As `postfix check` makes it: postfix's, mode 0700.
            guard let user = getpwnam("postfix"), chown(privateDirectory.path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                throw SetupError(description: "cannot give \(privateDirectory.path) to postfix (the test must run as root)")
            }
            chmod(privateDirectory.path, 0o700)
            try """
                \n[policy]
                socket_mode = "0660"
                socket_group = "postfix"
                """.appendLine(to: config)
            let vrules = try Harness.launch(CLI.binary.path, [
                "serve", "--listen", "unix:\(self.policySocket.path)", "--config", config.path,
                "--rules", rules.appendingPathComponent("main.lua").path, "--log-level", "debug",
            ], log: self.vrulesLog, directory: self.directory)
            self.lock.withLock { self.vrules = vrules }
            let deadline = Date().addingTimeInterval(15)
            while !FileManager.default.fileExists(atPath: self.policySocket.path) {
                guard Date() < deadline, vrules.isRunning else {
                    throw SetupError(description: "vrules serve did not create \(self.policySocket.path): \(Harness.tail(self.vrulesLog))")
                }
                usleep(50_000)
            }
            return
        }
        self.policyPort = try LoopbackPorts.free()
        let vrules = try Harness.launch(CLI.binary.path, [
            "serve", "--listen", "127.0.0.1:\(self.policyPort)", "--config", config.path,
            "--rules", rules.appendingPathComponent("main.lua").path, "--log-level", "debug",
        ], log: self.vrulesLog, directory: self.directory)
        self.lock.withLock { self.vrules = vrules }
        try Harness.waitForTCP(port: self.policyPort, process: vrules, log: self.vrulesLog, name: "vrules serve")
        // Something accepting on the port is not proof that vrules does: it says so in its log.
        let deadline = Date().addingTimeInterval(10)
        while !((try? String(contentsOf: self.vrulesLog, encoding: .utf8)) ?? "").contains("address=127.0.0.1:\(self.policyPort) [Policy] policy server listening") {
            guard Date() < deadline, vrules.isRunning else {
                throw SetupError(description: "vrules serve is not listening on 127.0.0.1:\(self.policyPort): \(Harness.tail(self.vrulesLog))")
            }
            usleep(20_000)
        }
    }

    // MARK: Postfix

    private func startPostfix() throws {
        let base = self.directory.appendingPathComponent("postfix")
        let etc = base.appendingPathComponent("etc")
        let queue = base.appendingPathComponent("queue")
        let data = base.appendingPathComponent("data")
        let spool = base.appendingPathComponent("spool")
        for directory in [etc, queue, data, spool] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        // The data directory belongs to postfix; the mail spool is world-writable and sticky.
        guard let user = getpwnam("postfix") else {
            throw SetupError(description: "no 'postfix' user: reinstall the Debian package 'postfix' (apt-get install --reinstall postfix)")
        }
        guard chown(data.path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
            throw SetupError(description: "cannot chown \(data.path) to postfix (the test must run as root): errno \(errno)")
        }
        chmod(spool.path, 0o1777)
        // postfix(1) and its daemons must be able to walk down to the config and queue.
        chmod(self.directory.path, 0o755)
        chmod(base.path, 0o755)

        self.smtpPort = try LoopbackPorts.free()
        try """
            compatibility_level = 3.6
            config_directory = \(etc.path)
            queue_directory = \(queue.path)
            data_directory = \(data.path)
            mail_owner = postfix
            setgid_group = postdrop
            myhostname = mx.postfix.test
            mydomain = postfix.test
            myorigin = postfix.test
            inet_interfaces = 127.0.0.1
            inet_protocols = ipv4
            mynetworks = 127.0.0.1/32
            # Nothing is delivered: the one relayed domain and everything else go to discard.
            mydestination =
            relay_domains = rcpt.postfix.test
            default_transport = discard:end-to-end test
            relay_transport = discard:end-to-end test
            local_transport = discard:end-to-end test
            alias_maps =
            alias_database =
            local_recipient_maps =
            luser_relay = nobody
            mail_spool_directory = \(spool.path)
            # No syslog here: log to a file through postlogd.
            maillog_file = \(base.path)/maillog
            maillog_file_prefixes = \(base.path)
            # Postfix would ask the system resolver, which has no network here; vrules does iprev.
            smtpd_peername_lookup = no
            \(self.restrictionSettings)
            smtpd_policy_service_timeout = 30s
            smtputf8_enable = no
            biff = no

            """.write(to: etc.appendingPathComponent("main.cf"), atomically: true, encoding: .utf8)
        // Debian's master.cf chroots smtpd into the queue directory: chroot n everywhere, but
        // for smtpd in the chrooted-socket case.
        let smtpdChroot = self.restrictions == .recipientOverChrootedSocket ? "y" : "n"
        try """
            127.0.0.1:\(self.smtpPort) inet n - \(smtpdChroot) - \(self.smtpdProcesses.map(String.init) ?? "-") smtpd
            pickup     unix  n - n 60 1 pickup
            cleanup    unix  n - n -  0 cleanup
            qmgr       unix  n - n 300 1 qmgr
            rewrite    unix  - - n -  - trivial-rewrite
            bounce     unix  - - n -  0 bounce
            defer      unix  - - n -  0 bounce
            trace      unix  - - n -  0 bounce
            verify     unix  - - n -  1 verify
            flush      unix  n - n 1000? 0 flush
            proxymap   unix  - - n -  - proxymap
            proxywrite unix  - - n -  1 proxymap
            smtp       unix  - - n -  - smtp
            relay      unix  - - n -  - smtp
            showq      unix  n - n -  - showq
            error      unix  - - n -  - error
            retry      unix  - - n -  - error
            discard    unix  - - n -  - discard
            local      unix  - n n -  - local
            anvil      unix  - - n -  1 anvil
            scache     unix  - - n -  1 scache
            postlog    unix-dgram n - n - 1 postlogd

            """.write(to: etc.appendingPathComponent("master.cf"), atomically: true, encoding: .utf8)

        // `postfix start` checks the installation (creating the queue's subdirectories) and
        // returns once the master daemon has initialised.
        self.lock.withLock { self.postfixStarted = true }
        do {
            try Harness.run(Self.postfix, ["-c", etc.path, "start"], in: self.directory)
        } catch {
            throw SetupError(description: "postfix -c \(etc.path) start failed: \(error)\n    maillog: \(Harness.tail(self.maillog))")
        }
        try Harness.waitForTCP(port: self.smtpPort, process: nil, log: self.maillog, name: "postfix smtpd")
    }

    private var restrictionSettings: String {
        let policy = "check_policy_service inet:127.0.0.1:\(self.policyPort)"
        switch self.restrictions {
        case .recipient:
            // Also asked at DATA, where the second header reaches the message (Postfix refuses
            // PREPEND at end of data); the message is then held (not discarded), so its queue
            // file can be read.
            return """
                smtpd_recipient_restrictions = \(policy), reject_unauth_destination
                smtpd_data_restrictions = \(policy)
                smtpd_end_of_data_restrictions = check_client_access static:HOLD
                """
        case .recipientOverChrootedSocket:
            return "smtpd_recipient_restrictions = check_policy_service unix:private/vrules, reject_unauth_destination"
        case .clientWithXCLIENT:
            return """
                smtpd_delay_reject = no
                smtpd_authorized_xclient_hosts = 127.0.0.0/8
                smtpd_client_restrictions = permit_mynetworks, \(policy)
                smtpd_recipient_restrictions = reject_unauth_destination
                """
        }
    }

    // MARK: Teardown

    /// A shell that outlives a crashed test process: when its parent goes away without
    /// `shutdown()`, it stops Postfix (whose master daemon is not a child of ours) and
    /// removes the directory. knotd and vrules have watchdogs of their own.
    private func startGuard() throws {
        let script = """
            trap 'exit 0' TERM
            parent=$PPID
            while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
            if [ -f "$1/postfix/etc/main.cf" ]; then "$2" -c "$1/postfix/etc" stop >/dev/null 2>&1; fi
            rm -rf "$1"
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script, "vrules-test-guard", self.directory.path, Self.postfix]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try ChildProcess.start(process)
        self.guardProcess = process
    }

    /// The queue file of a held message as `postcat` prints it (headers and body).
    func queuedMessage(id: String) throws -> String {
        try Harness.run("/usr/sbin/postcat", ["-c", self.postfixConfig.path, "-q", id], in: self.directory)
    }

    /// Stops Postfix, vrules and Knot, and removes the directory (unless VRULES_KEEP_TEST_DIRS
    /// is set). Safe to call more than once.
    func shutdown() {
        let (knot, vrules, guardProcess, postfixStarted) = self.lock.withLock { () -> (Process?, Process?, Process?, Bool) in
            if self.isShutDown { return (nil, nil, nil, false) }
            self.isShutDown = true
            defer { self.knot = nil; self.vrules = nil; self.guardProcess = nil }
            return (self.knot, self.vrules, self.guardProcess, self.postfixStarted)
        }
        if postfixStarted {
            _ = try? Harness.run(Self.postfix, ["-c", self.postfixConfig.path, "stop"], in: self.directory, timeout: 15)
        }
        if let vrules, !Harness.stop(vrules, name: "vrules serve") {
            FileHandle.standardError.write(Data("vrules serve did not stop on SIGTERM; its log (with the backtraces SIGABRT printed):\n\(Harness.tail(self.vrulesLog, lines: 200))\n".utf8))
        }
        if let knot { Harness.stop(knot, name: "knotd") }
        if let guardProcess { Harness.stop(guardProcess, name: "guard") }
        if ProcessInfo.processInfo.environment["VRULES_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(at: self.directory)
        }
    }

    /// The ends of the servers' logs, for failure messages.
    var diagnostics: String {
        """
            directory: \(self.directory.path)
            postfix maillog:
            \(Harness.tail(self.maillog))
            vrules serve log:
            \(Harness.tail(self.vrulesLog))
            knotd log:
            \(Harness.tail(self.knotLog, lines: 4))
        """
    }
}

/// Environments still running, shut down when the test process exits normally.
enum Environments {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var running: [MailEnvironment] = []
    nonisolated(unsafe) private static var registered = false

    static func register(_ environment: MailEnvironment) {
        self.lock.lock()
        defer { self.lock.unlock() }
        self.running.append(environment)
        if !self.registered {
            self.registered = true
            atexit { Environments.shutdownAll() }
        }
    }

    static func shutdownAll() {
        self.lock.lock()
        let environments = self.running
        self.running = []
        self.lock.unlock()
        for environment in environments { environment.shutdown() }
    }
}

/// One environment shared by the tests that leave DNS running, started on first use.
actor SharedEnvironment {
    static let shared = SharedEnvironment()
    private var task: Task<Result<MailEnvironment, SetupError>, Never>?

    func get() async throws -> MailEnvironment {
        if self.task == nil {
            self.task = Task {
                do {
                    return .success(try await blocking { try MailEnvironment(name: "postfix-shared") })
                } catch let error as SetupError {
                    return .failure(error)
                } catch {
                    return .failure(SetupError(description: "\(error)"))
                }
            }
        }
        return try await self.task!.value.get()
    }
}

extension String {
    /// Appends this text to the file at `url`.
    func appendLine(to url: URL) throws {
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(self.utf8))
    }
}
