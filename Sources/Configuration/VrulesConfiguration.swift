import DNS
import ListenAddress
import Foundation
import DNSResolver
import TOML

/// Everything `vrules.toml` says, read and validated in one place: the DNS resolvers
/// (`[server.dns]`, `[server.virtual."<domain>".dns]`), `[policy]`, `[limits]` and `[dnsbl."<zone>"]`.
/// `vrules run`, `serve`, `dns` and `test` load through it, and `vrules check` reports the
/// errors it finds, so a file one refuses the others refuse with the same words.
public struct VrulesConfiguration: Sendable {
    /// `[limits]`; nil keeps the engine's default.
    public struct Limits: Hashable, Sendable {
        public var instructionsPerStage: Int64?
        public var memoryBytes: Int?
        public var stageTimeout: Duration?
        /// Rule log lines per stage (`log_lines`).
        public var logLinesPerStage: Int?
        /// DNS calls per stage (`dns_calls`).
        public var dnsCallsPerStage: Int?

        public init(instructionsPerStage: Int64? = nil, memoryBytes: Int? = nil, stageTimeout: Duration? = nil,
                    logLinesPerStage: Int? = nil, dnsCallsPerStage: Int? = nil) {
            self.instructionsPerStage = instructionsPerStage
            self.memoryBytes = memoryBytes
            self.stageTimeout = stageTimeout
            self.logLinesPerStage = logLinesPerStage
            self.dnsCallsPerStage = dnsCallsPerStage
        }
    }

    /// `[policy]` beyond `listen`: how `vrules serve` bounds its clients and answers.
    public struct PolicySettings: Hashable, Sendable {
        /// Connections served at once (`max_connections`); nil keeps the server's default.
        public var maximumConnections: Int?
        /// Recipients of one transaction (`max_recipients`); nil keeps the server's default.
        public var maximumRecipients: Int?
        /// The answer to a `protocol_state` the server does not know (`unknown_state_action`):
        /// `DUNNO` or a 4xx/5xx reply.
        public var unknownStateAction: String?
        /// Permission bits of the UNIX socket, octal (`socket_mode`, e.g. "0660").
        public var socketMode: String?
        /// Group of the UNIX socket (`socket_group`, e.g. "postfix").
        public var socketGroup: String?
        /// Refusals logged and counted but answered `DUNNO` (`dry_run`): new rules watched
        /// on live mail before they refuse any.
        public var dryRun: Bool?

        public init() {}
    }

    public var dns: DNSConfiguration
    /// `[policy] listen`: where `vrules serve` listens unless `--listen` says otherwise.
    public var listen: [String]
    public var policy = PolicySettings()
    public var limits: Limits
    /// `[dnsbl."<zone>"]`: what a blocklist's answers mean, over the built-in policies.
    public var dnsbl: DNSBLPolicies

    public init(dns: DNSConfiguration, listen: [String] = [], limits: Limits = Limits(), dnsbl: DNSBLPolicies = DNSBLPolicies()) {
        self.dns = dns
        self.listen = listen
        self.limits = limits
        self.dnsbl = dnsbl
    }

    static let topLevelKeys = ["server", "policy", "limits", "dnsbl"]
    static let dnsblKeys = ["listed", "refused", "query", "query_key"]
    static let serverKeys = ["dns", "virtual"]
    static let virtualDomainKeys = ["dns"]
    static let policyKeys = ["listen", "max_connections", "max_recipients", "unknown_state_action", "socket_mode", "socket_group",
                             "dry_run"]
    static let limitKeys = ["instructions", "memory", "stage_timeout", "log_lines", "dns_calls"]
    /// The most `[limits] log_lines` allows.
    static let maximumLogLines: Int64 = 1_000_000
    /// The most `[limits] dns_calls` allows.
    static let maximumDNSCalls: Int64 = 100_000
    /// The smallest `[limits] memory`.
    static let minimumMemoryBytes = 1 << 20
    /// The longest stage timeout accepted.
    static let maximumStageTimeout: Duration = .seconds(3600)

    // MARK: - Entry points

    /// Loads the file at `path`. A missing file is an error, or (`.systemDefaults`, for the
    /// default `vrules.toml`) the defaults with the system resolver.
    public static func load(path: String, ifMissing: DNSConfiguration.MissingFile = .error,
                            resolvConfPath: String = "/etc/resolv.conf") throws(ConfigurationErrors) -> VrulesConfiguration
    {
        let result = self.check(path: path, ifMissing: ifMissing, resolvConfPath: resolvConfPath)
        guard let configuration = result.configuration, result.errors.isEmpty else { throw ConfigurationErrors(result.errors) }
        return configuration
    }

    /// Parses a document; `file` names it in errors.
    public static func parse(_ bytes: [UInt8], file: String,
                             resolvConfPath: String = "/etc/resolv.conf") throws(ConfigurationErrors) -> VrulesConfiguration
    {
        let result = self.check(bytes, file: file, resolvConfPath: resolvConfPath)
        guard let configuration = result.configuration, result.errors.isEmpty else { throw ConfigurationErrors(result.errors) }
        return configuration
    }

    /// Every mistake in the file at `path` (what `vrules check` reports), and the
    /// configuration when there is none.
    public static func check(path: String, ifMissing: DNSConfiguration.MissingFile = .error,
                             resolvConfPath: String = "/etc/resolv.conf") -> (configuration: VrulesConfiguration?, errors: [ConfigurationError])
    {
        let start = TOMLPosition(line: 1, column: 1)
        switch ConfigurationFileReader.read(path) {
        case .contents(let bytes):
            return self.check(bytes, file: path, resolvConfPath: resolvConfPath)
        case .missing where ifMissing == .systemDefaults:
            return self.check([], file: path, resolvConfPath: resolvConfPath)
        case .missing:
            return (nil, [ConfigurationError(file: path, position: start, keyPath: "", message: "no such file", kind: .unreadable)])
        case .unreadable(let reason):
            return (nil, [ConfigurationError(file: path, position: start, keyPath: "", message: reason, kind: .unreadable)])
        }
    }

    /// Every mistake in a document, and the configuration when there is none.
    public static func check(_ bytes: [UInt8], file: String,
                             resolvConfPath: String = "/etc/resolv.conf") -> (configuration: VrulesConfiguration?, errors: [ConfigurationError])
    {
        let document: TOMLTable
        do {
            document = try TOML.parse(bytes)
        } catch {
            return (nil, [ConfigurationError(file: file, position: error.position, keyPath: "",
                                             message: "TOML syntax error: \(error.reason)", kind: .syntax)])
        }
        var errors: [ConfigurationError] = []
        let configuration = self.read(document, file: file, resolvConfPath: resolvConfPath, errors: &errors)
        return (errors.isEmpty ? configuration : nil, ConfigurationErrors(errors).errors)
    }

    // MARK: - Tables

    static func read(_ document: TOMLTable, file: String, resolvConfPath: String, errors: inout [ConfigurationError]) -> VrulesConfiguration {
        let values = ValueReader(file: file)
        errors += values.unknownKeys(document, allowed: Self.topLevelKeys, at: .root)

        let serverPath = ConfigurationKeyPath.root.child("server")
        var server: TOMLTable?
        if let entry = document.entry("server") {
            do throws(ConfigurationError) {
                server = try values.table(entry, at: serverPath)
            } catch {
                errors.append(error)
            }
        }
        if let server {
            errors += values.unknownKeys(server, allowed: Self.serverKeys, at: serverPath)
            if let virtual = server["virtual"]?.table {
                for domain in virtual.keys {
                    guard let domainTable = virtual[domain]?.table else { continue }
                    errors += values.unknownKeys(domainTable, allowed: Self.virtualDomainKeys,
                                                 at: serverPath.child("virtual").child(domain))
                }
            }
        }
        var dnsReader = DNSSectionReader(file: file, resolvConfPath: resolvConfPath)
        var configuration = VrulesConfiguration(dns: dnsReader.read(server: server, errors: &errors))

        if let entry = document.entry("policy") {
            let path = ConfigurationKeyPath.root.child("policy")
            do throws(ConfigurationError) {
                let policy = try values.table(entry, at: path)
                errors += values.unknownKeys(policy, allowed: Self.policyKeys, at: path)
                if let listen = policy.entry("listen") {
                    configuration.listen = try Self.listenAddresses(listen, at: path.child("listen"), values: values,
                                                                    errors: &errors)
                }
                configuration.policy = Self.readPolicy(policy, at: path, values: values, errors: &errors)
            } catch {
                errors.append(error)
            }
        }

        if let entry = document.entry("limits") {
            let path = ConfigurationKeyPath.root.child("limits")
            do throws(ConfigurationError) {
                let limits = try values.table(entry, at: path)
                errors += values.unknownKeys(limits, allowed: Self.limitKeys, at: path)
                configuration.limits = Self.readLimits(limits, at: path, values: values, errors: &errors)
            } catch {
                errors.append(error)
            }
        }
        if let entry = document.entry("dnsbl") {
            configuration.dnsbl = Self.readDNSBL(entry, values: values, errors: &errors)
        }
        return configuration
    }

    /// `[dnsbl."zen.spamhaus.org"]` with `listed` and `refused`: arrays of addresses,
    /// `first-last` ranges or CIDR blocks. A zone named keeps the built-in policy's values
    /// for a key it does not give.
    private static func readDNSBL(_ entry: TOMLTable.Entry, values: ValueReader,
                                  errors: inout [ConfigurationError]) -> DNSBLPolicies {
        let path = ConfigurationKeyPath.root.child("dnsbl")
        var policies = DNSBLPolicies()
        let zones: TOMLTable
        do throws(ConfigurationError) {
            zones = try values.table(entry, at: path)
        } catch {
            errors.append(error)
            return policies
        }
        for zoneName in zones.keys {
            guard let zoneEntry = zones.entry(zoneName) else { continue }
            let zonePath = path.child(zoneName)
            let zone: String
            do {
                zone = try DNSBLZone.name(zoneName)
            } catch {
                errors.append(values.error(.value, zonePath, at: zoneEntry.keyPosition, "\(error)"))
                continue
            }
            do throws(ConfigurationError) {
                let table = try values.table(zoneEntry, at: zonePath)
                errors += values.unknownKeys(table, allowed: Self.dnsblKeys, at: zonePath)
                var policy = DNSBLPolicies().policy(for: zone)
                policy.queryZone = Self.queryZone(table, at: zonePath, values: values, errors: &errors)
                for key in ["listed", "refused"] {
                    guard let rangesEntry = table.entry(key) else { continue }
                    let ranges = try Self.stringArray(rangesEntry, at: zonePath.child(key), values: values, errors: &errors)
                        .enumerated().compactMap { index, text -> IPv4Range? in
                            guard let range = IPv4Range(text) else {
                                let position = rangesEntry.value.array?[index].position ?? rangesEntry.keyPosition
                                errors.append(values.error(.value, zonePath.child(key).element(index), at: position,
                                                           "'\(text)' is not an IPv4 address, a range like 127.0.0.2-127.0.0.11 or a block like 127.255.255.0/24"))
                                return nil
                            }
                            return range
                        }
                    if key == "listed" { policy.listed = ranges } else { policy.refused = ranges }
                }
                policies.zones[zone] = policy
            } catch {
                errors.append(error)
            }
        }
        return policies
    }

    private static func readPolicy(_ table: TOMLTable, at path: ConfigurationKeyPath, values: ValueReader,
                                   errors: inout [ConfigurationError]) -> PolicySettings {
        var settings = PolicySettings()
        func read(_ key: String, _ body: (TOMLTable.Entry, ConfigurationKeyPath) throws(ConfigurationError) -> Void) {
            guard let entry = table.entry(key) else { return }
            do throws(ConfigurationError) {
                try body(entry, path.child(key))
            } catch {
                errors.append(error)
            }
        }
        read("max_connections") { entry, key throws(ConfigurationError) in
            settings.maximumConnections = Int(try values.integer(entry, at: key, range: 1...1_000_000))
        }
        read("dry_run") { entry, key throws(ConfigurationError) in
            settings.dryRun = try values.boolean(entry, at: key)
        }
        read("max_recipients") { entry, key throws(ConfigurationError) in
            settings.maximumRecipients = Int(try values.integer(entry, at: key, range: 1...1_000_000))
        }
        read("unknown_state_action") { entry, key throws(ConfigurationError) in
            let text = try values.string(entry, at: key)
            guard Self.isPolicyAction(text) else {
                throw values.error(.value, key, at: entry.keyPosition,
                                   "invalid action '\(TOMLText.escaped(text, limit: 80))' (use DUNNO or a reply such as \"451 4.3.0 text\")")
            }
            settings.unknownStateAction = text
        }
        read("socket_mode") { entry, key throws(ConfigurationError) in
            let text = try values.string(entry, at: key)
            let digits = text.allSatisfy { ("0"..."7").contains($0) }
            guard !text.isEmpty, text.count <= 4, digits, (Int(text, radix: 8) ?? 0o1000) <= 0o777 else {
                throw values.error(.value, key, at: entry.keyPosition,
                                   "invalid mode '\(TOMLText.escaped(text, limit: 80))' (use octal permission bits such as \"0660\")")
            }
            settings.socketMode = text
        }
        read("socket_group") { entry, key throws(ConfigurationError) in
            let text = try values.string(entry, at: key)
            guard !text.isEmpty else {
                throw values.error(.value, key, at: entry.keyPosition, "an empty group name (name the group Postfix's smtpd runs as, such as \"postfix\")")
            }
            settings.socketGroup = text
        }
        return settings
    }

    /// `DUNNO`, or a 4xx/5xx reply whose enhanced code has the reply's class, in printable ASCII.
    static func isPolicyAction(_ text: String) -> Bool {
        if text == "DUNNO" { return true }
        let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].isEmpty, text.unicodeScalars.allSatisfy({ (0x20..<0x7F).contains($0.value) }),
              parts[0].count == 3, let code = Int(parts[0]), (400...599).contains(code) else { return false }
        let enhanced = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        return enhanced.count == 3 && enhanced[0] == parts[0].prefix(1)
            && enhanced.dropFirst().allSatisfy { (1...3).contains($0.count) && $0.allSatisfy { $0.isASCII && $0.isNumber } }
    }

    /// `query = "{key}.zen.dq.spamhaus.net"` with `query_key`: the zone the lookups go to.
    private static func queryZone(_ table: TOMLTable, at path: ConfigurationKeyPath, values: ValueReader,
                                  errors: inout [ConfigurationError]) -> String? {
        var template: String?
        var key: String?
        do throws(ConfigurationError) {
            if let entry = table.entry("query") { template = try values.string(entry, at: path.child("query")) }
            if let entry = table.entry("query_key") { key = try values.string(entry, at: path.child("query_key")) }
        } catch {
            errors.append(error)
            return nil
        }
        guard let template else {
            if key != nil, let entry = table.entry("query_key") {
                errors.append(values.error(.value, path.child("query_key"), at: entry.keyPosition,
                                           "query_key needs query, the zone template, e.g. \"{key}.zen.dq.spamhaus.net\""))
            }
            return nil
        }
        let entry = table.entry("query")!
        if template.contains("{key}") && key == nil {
            errors.append(values.error(.value, path.child("query"), at: entry.keyPosition, "the template uses {key}: set query_key"))
            return nil
        }
        let zone = template.replacingOccurrences(of: "{key}", with: key ?? "")
        do {
            let normalized = try DNSName.normalize(zone)
            guard !normalized.isEmpty else { throw DNSNameError(name: zone, reason: "empty name") }
            return normalized
        } catch {
            errors.append(values.error(.value, path.child("query"), at: entry.keyPosition, TOMLText.escaped("\(error)", limit: 200)))
            return nil
        }
    }

    private static func readLimits(_ table: TOMLTable, at path: ConfigurationKeyPath, values: ValueReader,
                                   errors: inout [ConfigurationError]) -> Limits {
        var limits = Limits()
        do throws(ConfigurationError) {
            if let entry = table.entry("instructions") {
                limits.instructionsPerStage = try values.integer(entry, at: path.child("instructions"), range: 1...Int64.max)
            }
        } catch {
            errors.append(error)
        }
        do throws(ConfigurationError) {
            if let entry = table.entry("memory") {
                let bytes = try values.size(entry, at: path.child("memory"))
                // Below this the prelude and the shipped policy may not even load: an error
                // here, not "not enough memory" from `vrules serve` as it starts.
                guard bytes >= Self.minimumMemoryBytes else {
                    throw values.error(.value, path.child("memory"), at: entry.keyPosition,
                                       "at least \(Self.minimumMemoryBytes >> 20)MiB, got \(bytes) bytes (the rules and the transactions held for them share it)")
                }
                limits.memoryBytes = bytes
            }
        } catch {
            errors.append(error)
        }
        do throws(ConfigurationError) {
            if let entry = table.entry("stage_timeout") {
                limits.stageTimeout = try values.duration(entry, at: path.child("stage_timeout"), maximum: Self.maximumStageTimeout)
            }
        } catch {
            errors.append(error)
        }
        do throws(ConfigurationError) {
            if let entry = table.entry("log_lines") {
                limits.logLinesPerStage = Int(try values.integer(entry, at: path.child("log_lines"), range: 0...Self.maximumLogLines))
            }
        } catch {
            errors.append(error)
        }
        do throws(ConfigurationError) {
            if let entry = table.entry("dns_calls") {
                limits.dnsCallsPerStage = Int(try values.integer(entry, at: path.child("dns_calls"), range: 1...Self.maximumDNSCalls))
            }
        } catch {
            errors.append(error)
        }
        return limits
    }

    /// `[policy] listen`: each address as `vrules serve` reads it (`ListenAddress`), and no two
    /// that cannot both be bound, so that `vrules check` finds what would stop the server.
    private static func listenAddresses(_ entry: TOMLTable.Entry, at path: ConfigurationKeyPath, values: ValueReader,
                                        errors: inout [ConfigurationError]) throws(ConfigurationError) -> [String] {
        let texts = try Self.stringArray(entry, at: path, values: values, errors: &errors)
        guard let array = entry.value.array else { return texts }
        guard array.count <= ListenAddress.maximumCount else {
            throw values.error(.value, path, at: entry.keyPosition,
                               "at most \(ListenAddress.maximumCount) addresses, got \(array.count)")
        }
        var parsed: [ListenAddress] = []
        for (index, element) in array.enumerated() {
            guard let text = element.string else { continue }
            switch ListenAddress.parse(text) {
            case .success(let address):
                if let conflict = ListenAddress.conflict(address, with: parsed[...]) {
                    errors.append(values.error(.value, path.element(index), at: element.position, conflict))
                } else {
                    parsed.append(address)
                }
            case .failure(let problem):
                errors.append(values.error(.value, path.element(index), at: element.position,
                                           "'\(TOMLText.escaped(text, limit: 120))': \(problem)"))
            }
        }
        return texts
    }

    /// An array of strings; each element that is not a string is an error of its own.
    private static func stringArray(_ entry: TOMLTable.Entry, at path: ConfigurationKeyPath, values: ValueReader,
                                    errors: inout [ConfigurationError]) throws(ConfigurationError) -> [String] {
        guard let array = entry.value.array else {
            throw values.error(.type, path, at: entry.keyPosition, "expected an array of strings, found \(entry.value.typeName)")
        }
        var strings: [String] = []
        for (index, element) in array.enumerated() {
            guard let text = element.string else {
                errors.append(values.error(.type, path.element(index), at: element.position, "expected a string, found \(element.typeName)"))
                continue
            }
            strings.append(text)
        }
        return strings
    }
}
