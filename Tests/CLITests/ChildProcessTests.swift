import Foundation
import Testing
import VrulesTestSupport

/// The bounds every test that starts a process relies on: a command or a server that hangs
/// ends in a failure with what it printed, never in a test run that waits forever.
@Suite("Test harness: child processes are bounded")
struct ChildProcessTests {
    @Test("a command past its time bound is aborted, and what it printed is kept")
    func commandPastItsBound() throws {
        let started = Date()
        let output = try ChildProcess.run(URL(fileURLWithPath: "/bin/sh"), ["-c", "echo started; echo waiting >&2; exec sleep 60"],
                                          timeout: 1)
        #expect(output.timedOut)
        #expect(output.status == -1)
        #expect(output.stdout == "started\n")
        #expect(output.stderr.hasPrefix("waiting\n"))
        #expect(output.stderr.contains("aborted after 1 s"))
        #expect(Date().timeIntervalSince(started) < 20)
    }

    @Test("a command that writes much to both pipes is read to its end")
    func bothPipesDrained() throws {
        // 1 MiB to standard error before anything to standard output: reading one pipe to its
        // end before the other would stall on the full pipe.
        let output = try ChildProcess.run(URL(fileURLWithPath: "/bin/sh"),
                                          ["-c", "head -c 1048576 /dev/zero >&2; echo done"], timeout: 30)
        #expect(!output.timedOut)
        #expect(output.status == 0)
        #expect(output.stdout == "done\n")
        #expect(output.stderr.utf8.count == 1_048_576)
    }

    @Test("a server that ignores SIGTERM is aborted after the grace period; one that stops is not")
    func serverIgnoringSIGTERM() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("vrules-harness-\(UUID()).log")
        defer { try? FileManager.default.removeItem(at: log) }
        // Under the watchdog shell, as the tests start knotd, unbound and vrules serve.
        let stubborn = try ServerProcess.launch("/bin/sh", ["-c", "trap '' TERM; while :; do sleep 0.1; done"], log: log)
        try await Task.sleep(for: .milliseconds(300))
        let server = try #require(ChildProcess.children(of: stubborn.processIdentifier).first)
        let started = Date()
        #expect(!ServerProcess.stop(stubborn, name: "stubborn", grace: 1))
        #expect(!stubborn.isRunning)
        // Dead, though perhaps not reaped yet: `kill(server, 0)` still succeeds on a zombie.
        #expect(!ChildProcess.isLive(server), "the server under the watchdog is still running")
        #expect(Date().timeIntervalSince(started) < 20)

        let polite = try ServerProcess.launch("/bin/sleep", ["60"], log: log)
        try await Task.sleep(for: .milliseconds(300))
        #expect(ServerProcess.stop(polite, name: "polite", grace: 5))
        #expect(!polite.isRunning)
    }

    @Test("a process started from a test's thread has no signal blocked (this thread blocks SIGTERM)")
    func startedWithAnEmptySignalMask() async throws {
        // The cooperative pool's threads block most signals; a child inheriting that mask
        // would ignore SIGTERM (and the watchdog's kill) for good.
        let output = try ChildProcess.run(URL(fileURLWithPath: "/bin/grep"), ["^SigBlk:", "/proc/self/status"], timeout: 10)
        #expect(output.stdout == "SigBlk:\t0000000000000000\n", "\(output.stdout)")
    }
}
