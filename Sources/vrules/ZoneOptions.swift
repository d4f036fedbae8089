import ArgumentParser
import Configuration
import DNS

/// DNS answered offline from zone files, with injected faults and delays: what `vrules run`,
/// `answer`, `serve` and `dns` take instead of the configured resolvers, and what a test's
/// fixtures give `vrules test`.
struct ZoneOptions: ParsableArguments {
    @Option(help: "Answer DNS from this zone file (RFC 1035 syntax) instead of the network.")
    var zone: [String] = []

    @Option(help: "With --zone: inject a fault, NAME=timeout|servfail|refused|delay:DURATION (repeatable).")
    var fault: [String] = []

    @Option(help: "With --zone: delay every answer by this duration (e.g. 50ms).")
    var delay: String?

    var isEmpty: Bool { self.zone.isEmpty }

    func validate() throws {
        if self.zone.isEmpty && (!self.fault.isEmpty || self.delay != nil) {
            throw ValidationError("--fault and --delay need --zone")
        }
        for fault in self.fault { _ = try Self.parseFault(fault) }
        if let delay, DurationText.parse(delay) == nil {
            throw ValidationError("--delay: \(DurationText.complaint(about: delay))")
        }
    }

    /// The zone files' resolver with the faults and delay set, or nil without `--zone`.
    /// `options` are the configured resolver's (`[server.dns.options]`), so that rules get
    /// from the zone what they will get in production.
    func makeResolver(options: ZoneResolver.Options) throws -> ZoneResolver? {
        guard !self.zone.isEmpty else { return nil }
        var contents = ZoneContents()
        for path in self.zone {
            contents.append(try ZoneFile.loadContents(path: path))
        }
        let resolver = ZoneResolver(records: contents.records, security: contents.security, options: options)
        for text in self.fault {
            let (name, fault) = try Self.parseFault(text)
            resolver.setFault(fault, for: name)
        }
        if let delay, let duration = DurationText.parse(delay) { resolver.delay = duration }
        return resolver
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
