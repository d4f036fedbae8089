import ArgumentParser
import DNS
import Foundation

/// Where DNS answers come from: a zone file (offline, with injected faults) or the
/// resolver configured in `vrules.toml`.
struct ResolverOptions: ParsableArguments {
    @Option(help: "Answer DNS from this zone file (RFC 1035 syntax) instead of the network.")
    var zone: [String] = []

    @Option(help: "With --zone: inject a fault, NAME=timeout|servfail|refused|delay:DURATION (repeatable).")
    var fault: [String] = []

    @Option(help: "With --zone: delay every answer by this duration (e.g. 50ms).")
    var delay: String?

    @Option(help: "The configuration file.")
    var config: String = "vrules.toml"

    func validate() throws {
        if self.zone.isEmpty && (!self.fault.isEmpty || self.delay != nil) {
            throw ValidationError("--fault and --delay need --zone")
        }
        for fault in self.fault { _ = try Self.parseFault(fault) }
        if let delay, Self.parseDuration(delay) == nil {
            throw ValidationError("--delay: invalid duration '\(delay)' (use e.g. 50ms, 2s)")
        }
    }

    /// `[policy]` and `[limits]` of the configuration file (defaults when the default file is absent).
    func loadConfigurationFile() throws -> ConfigurationFile {
        try ConfigurationFile.load(path: self.config, isDefault: self.config == "vrules.toml")
    }

    func makeResolvers() throws -> any DNSResolverSelecting {
        guard !self.zone.isEmpty else {
            return try NetworkResolvers.load(configPath: self.config)
        }
        var records: [DNSRecord] = []
        for path in self.zone {
            records += try ZoneFile.load(path: path)
        }
        let resolver = ZoneResolver(records: records)
        for text in self.fault {
            let (name, fault) = try Self.parseFault(text)
            resolver.setFault(fault, for: name)
        }
        if let delay, let duration = Self.parseDuration(delay) { resolver.delay = duration }
        return SingleResolver(resolver)
    }

    static func parseFault(_ text: String) throws -> (String, ZoneFault) {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, let name = try? DNSName.normalize(parts[0]) else {
            throw ValidationError("--fault: expected NAME=timeout|servfail|refused|delay:DURATION, got '\(text)'")
        }
        switch parts[1] {
        case "timeout": return (name, .timeout)
        case "servfail": return (name, .servfail)
        case "refused": return (name, .refused)
        default:
            if parts[1].hasPrefix("delay:"), let duration = Self.parseDuration(String(parts[1].dropFirst(6))) {
                return (name, .delay(duration))
            }
            throw ValidationError("--fault: unknown fault '\(parts[1])' (timeout, servfail, refused, delay:DURATION)")
        }
    }

    /// "250ms", "2s", "1.5s", or a bare number of seconds.
    static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)), value >= 0 {
                return .milliseconds(Int64((value * scale * 1000).rounded()))
            }
            return nil
        }
        if let value = Double(text), value >= 0 { return .milliseconds(Int64((value * 1000).rounded())) }
        return nil
    }
}
