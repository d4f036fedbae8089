import ArgumentParser
import Configuration
import DNS
import DNSResolver
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
        if let delay, DurationText.parse(delay) == nil {
            throw ValidationError("--delay: \(DurationText.complaint(about: delay))")
        }
    }

    /// `[policy]` and `[limits]` of the configuration file (defaults when the default file is absent).
    func loadConfigurationFile() throws -> ConfigurationFile {
        try ConfigurationFile.load(path: self.config, isDefault: self.config == "vrules.toml")
    }

    func makeResolvers() throws -> any DNSResolverSelecting {
        try self.makeResolvers(using: nil)
    }

    /// The resolvers, from `configuration` when it is already loaded.
    func makeResolvers(using configuration: ConfigurationFile?) throws -> any DNSResolverSelecting {
        guard !self.zone.isEmpty else {
            return DNSResolverSet(configuration: try (configuration ?? self.loadConfigurationFile()).dns)
        }
        var contents = ZoneContents()
        for path in self.zone {
            contents.append(try ZoneFile.loadContents(path: path))
        }
        let resolver = ZoneResolver(contents: contents)
        for text in self.fault {
            let (name, fault) = try Self.parseFault(text)
            resolver.setFault(fault, for: name)
        }
        if let delay, let duration = DurationText.parse(delay) { resolver.delay = duration }
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
            if parts[1].hasPrefix("delay:") {
                let text = String(parts[1].dropFirst(6))
                guard let duration = DurationText.parse(text) else {
                    throw ValidationError("--fault \(name)=delay: \(DurationText.complaint(about: text))")
                }
                return (name, .delay(duration))
            }
            throw ValidationError("--fault: unknown fault '\(parts[1])' (timeout, servfail, refused, delay:DURATION)")
        }
    }
}
