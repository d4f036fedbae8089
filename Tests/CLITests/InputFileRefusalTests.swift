import Foundation
import Testing
import VrulesTestSupport

/// Every file an operator names (configuration, trust anchors, rule scripts, modules, test
/// files, zone files) is read the same way: a FIFO, a device, a folder or a file too large is
/// refused at once with the reason, never waited on or read without end. Before, a
/// `trust_anchor_file` or `--zone` naming /dev/zero grew the process by gigabytes a second and
/// one naming a FIFO blocked the command (or a reload) for good.
@Suite("Input files: what cannot be read is refused at once, with the reason")
struct InputFileRefusalTests {
    /// Past this a command is taken to be waiting on the file: each answers in well under it.
    static let timeout: TimeInterval = 30

    /// A folder holding a FIFO no one writes to, a folder, and good rules and zone.
    static func scratch() throws -> URL {
        let directory = try CLI.scratch([
            "lib/ok.lua": "return {}\n",
            "requires-fifo.lua": "local fifo = require('lib.fifo')\nreturn {}\n",
            "folder/.keep": "",
        ])
        #expect(mkfifo(directory.appendingPathComponent("fifo").path, 0o644) == 0)
        #expect(mkfifo(directory.appendingPathComponent("lib/fifo.lua").path, 0o644) == 0)
        return directory
    }

    static let unreadable: [(path: String, reason: String)] = [
        ("fifo", "not a regular file (a FIFO)"),
        ("/dev/zero", "not a regular file (a character device)"),
        ("folder", "not a regular file (a folder)"),
    ]

    @Test("run --rules and run --zone", arguments: Self.unreadable)
    func runInputs(path: String, reason: String) throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path
        let rules = CLI.packageRoot.appendingPathComponent("rules/main.lua").path
        let badRules = try CLI.run(["run", "--rules", path, "--zone", zone], in: directory, timeout: Self.timeout)
        #expect(badRules.status == 2, "\(badRules.stderr)")
        #expect(badRules.stderr == "vrules: cannot load rules: \(path): cannot read rule script: \(reason)\n")
        let badZone = try CLI.run(["run", "--rules", rules, "--zone", path], in: directory, timeout: Self.timeout)
        #expect(badZone.status == 2, "\(badZone.stderr)")
        #expect(badZone.stderr == "vrules: \(path): cannot read: \(reason)\n")
    }

    @Test("trust_anchor_file in vrules.toml: check reports it, run and dns refuse it", arguments: Self.unreadable)
    func trustAnchorFile(path: String, reason: String) throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        [server.dns]
        type = "custom"
        servers = ["127.0.0.1:53"]

        [server.dns.options]
        validate = true
        trust_anchor_file = "\(path)"

        """.write(to: directory.appendingPathComponent("vrules.toml"), atomically: true, encoding: .utf8)
        let line = "vrules.toml:7:1: error: server.dns.options.trust_anchor_file: trust anchor file \(path): cannot read: \(reason) [unreadable-file]\n"
        let check = try CLI.run(["check", "vrules.toml"], in: directory, timeout: Self.timeout)
        #expect(check.status == 1)
        #expect(check.stdout == line)
        let run = try CLI.run(["run", "--config", "vrules.toml", "--rules", "lib/ok.lua"], in: directory, timeout: Self.timeout)
        #expect(run.status == 2)
        #expect(run.stderr == "vrules: " + line)
        let dns = try CLI.run(["dns", "lookup", "example.com", "--config", "vrules.toml"], in: directory, timeout: Self.timeout)
        #expect(dns.status == 2)
        #expect(dns.stderr == "vrules: " + line)
    }

    /// A folder given to check or test is a folder of scripts or test files.
    @Test("check and test name the file and the reason", arguments: Self.unreadable.filter { $0.path != "folder" })
    func checkAndTest(path: String, reason: String) throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let check = try CLI.run(["check", path], in: directory, timeout: Self.timeout)
        #expect(check.status == 1)
        #expect(check.stdout == "\(path):1:1: error: cannot read file: \(reason) [unreadable-file]\n")
        let test = try CLI.run(["test", path], in: directory, timeout: Self.timeout)
        #expect(test.status == 1)
        #expect(test.stdout.contains("FAIL - \(path): the test file does not load: cannot read test file: \(reason)\n"), "\(test.stdout)")
    }

    @Test("a required module that is a FIFO: the load fails with the module's name and the reason")
    func requiredFIFO() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path
        let run = try CLI.run(["run", "--rules", "requires-fifo.lua", "--zone", zone], in: directory, timeout: Self.timeout)
        #expect(run.status == 2)
        #expect(run.stderr == "vrules: cannot load rules: requires-fifo.lua:1: require: cannot read module 'lib.fifo' at lib/fifo.lua: not a regular file (a FIFO)\n")
        let check = try CLI.run(["check", "requires-fifo.lua"], in: directory, timeout: Self.timeout)
        #expect(check.status != -1, "check waited on the FIFO: \(check.stderr)")
    }

    @Test("a script that is not UTF-8 is refused with the line of its first bad byte; one too large by its size")
    func encodingAndSize() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(Array("-- rules\n-- caf".utf8) + [0xE9] + Array("\nreturn {}\n".utf8)).write(to: directory.appendingPathComponent("latin1.lua"))
        let latin1 = try CLI.run(["check", "latin1.lua"], in: directory, timeout: Self.timeout)
        #expect(latin1.stdout == "latin1.lua:1:1: error: cannot read file: not UTF-8 text (line 2) [unreadable-file]\n")
        // Sparse: 17 MiB on paper, nothing on disk.
        let big = directory.appendingPathComponent("big.lua").path
        #expect(FileManager.default.createFile(atPath: big, contents: nil))
        #expect(truncate(big, 17 << 20) == 0)
        let zone = CLI.packageRoot.appendingPathComponent("examples/example.zone").path
        let run = try CLI.run(["run", "--rules", "big.lua", "--zone", zone], in: directory, timeout: Self.timeout)
        #expect(run.status == 2)
        #expect(run.stderr == "vrules: cannot load rules: big.lua: cannot read rule script: larger than 16 MiB\n")
    }
}
