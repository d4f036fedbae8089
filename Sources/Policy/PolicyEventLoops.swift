import CCPUAffinity
import Foundation
import NIOCore

/// How many event loops `vrules serve` runs: one per CPU the process may run on, each with a
/// rule engine (a Lua state) of its own.
///
/// SwiftNIO sizes its shared event loop group by the machine's CPUs and the cgroup's CPU
/// limits, not by the process's affinity mask. Under `taskset` or systemd's `CPUAffinity=` it
/// would start a loop per CPU of the machine, and the loops would take turns on the CPUs the
/// process may use: on one CPU, two loops took 37–39 µs of CPU per request of the SPF
/// benchmark where one took 33–35 (docs/benchmarks.md, "ninth stop").
public enum PolicyEventLoops {
    /// The environment variable with which an operator sets the count (SwiftNIO's own).
    public static let environmentVariable = "NIO_SINGLETON_GROUP_LOOP_COUNT"

    /// Sizes SwiftNIO's shared group to the CPUs this process may run on, unless the
    /// environment names a count (the operator's choice stands). Call once, before anything
    /// uses the group: SwiftNIO stops the process if the size is set twice or after first use.
    public static func sizeToAffinity(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard environment[Self.environmentVariable] == nil else { return }
        let allowed = Int(vrules_cpu_affinity_count())
        guard allowed > 0 else { return }
        NIOSingletons.groupLoopCountSuggestion = min(allowed, System.coreCount)
    }
}
