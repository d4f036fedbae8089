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
    /// Sizes SwiftNIO's shared group to the CPUs this process may run on, unless
    /// `NIO_SINGLETON_GROUP_LOOP_COUNT` names a count (the operator's choice stands, and
    /// SwiftNIO reads it). Call once, before anything uses the group: SwiftNIO stops the
    /// process if the size is set twice or after first use.
    public static func sizeToAffinity() {
        guard getenv("NIO_SINGLETON_GROUP_LOOP_COUNT") == nil else { return }
        let allowed = Int(vrules_cpu_affinity_count())
        guard allowed > 0 else { return }
        NIOSingletons.groupLoopCountSuggestion = min(allowed, System.coreCount)
    }
}
