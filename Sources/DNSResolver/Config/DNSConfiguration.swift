import DNS
import Spelling
import NIOCore
import TOMLKit

/// The DNS part of `vrules.toml`: `[server.dns]`, `[server.dns.options]` and every
/// `[server.virtual."<domain>".dns]`. Only those subtrees are read and validated here, so
/// the full configuration loader can hand over the whole document.
public struct DNSConfiguration: Hashable, Sendable {
    public enum ResolverType: String, Hashable, Sendable, CaseIterable {
        case system, google, cloudflare, custom
    }

    /// Everything that makes one resolver: equal configurations share one resolver.
    public struct Resolver: Hashable, Sendable {
        public var type: ResolverType
        public var servers: [DNSServerAddress]
        public var options: DNSResolverOptions
        /// From resolv.conf with `type = "system"`; kept for diagnostics. Mail names are
        /// always fully qualified, so no search list is ever applied to them.
        public var search: [String]
        public var ndots: Int

        public init(type: ResolverType, servers: [DNSServerAddress], options: DNSResolverOptions,
                    search: [String] = [], ndots: Int = 1) {
            self.type = type
            self.servers = servers
            self.options = options
            self.search = search
            self.ndots = ndots
        }
    }

    public var root: Resolver
    /// Normalised virtual domain → its resolver, for domains that have a `dns` table.
    public var virtualDomains: [String: Resolver]

    public init(root: Resolver, virtualDomains: [String: Resolver] = [:]) {
        self.root = root
        self.virtualDomains = virtualDomains
    }

    public static let googleServers: [DNSServerAddress] = [
        "8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844",
    ].map { DNSServerAddress(parsing: $0)! }

    public static let cloudflareServers: [DNSServerAddress] = [
        "1.1.1.1", "1.0.0.1", "2606:4700:4700::1111", "2606:4700:4700::1001",
    ].map { DNSServerAddress(parsing: $0)! }

    // MARK: - Entry points

    /// What `load` does when the file does not exist.
    public enum MissingFile: Sendable {
        /// Fail with "no such file" (an explicit `--config FILE`).
        case error
        /// Behave as an empty file: `type = "system"` with default options (the default
        /// `vrules.toml` when there is none).
        case systemDefaults
    }

    /// Reads the file at `path`.
    public static func load(path: String, ifMissing: MissingFile = .error,
                            resolvConfPath: String = "/etc/resolv.conf") throws(DNSConfigurationError) -> DNSConfiguration {
        let text: String
        do {
            guard let read = try readTextFile(path) else {
                if ifMissing == .systemDefaults { return try Self.parse(text: "", file: path, resolvConfPath: resolvConfPath) }
                throw DNSConfigurationError(file: path, keyPath: "", message: "no such file")
            }
            text = read
        } catch let error as DNSConfigurationError {
            throw error
        } catch {
            throw DNSConfigurationError(file: path, keyPath: "", message: "\(error)")
        }
        return try Self.parse(text: text, file: path, resolvConfPath: resolvConfPath)
    }

    /// Parses TOML text; `file` is only used in error messages.
    public static func parse(text: String, file: String, resolvConfPath: String = "/etc/resolv.conf") throws(DNSConfigurationError) -> DNSConfiguration {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw DNSConfigurationError(file: "\(file):\(error.source.begin.line):\(error.source.begin.column)",
                                        keyPath: "", message: "TOML syntax error: \(error.description)")
        } catch {
            throw DNSConfigurationError(file: file, keyPath: "", message: "TOML syntax error: \(error)")
        }
        return try Self.parse(table: table, file: file, resolvConfPath: resolvConfPath)
    }

    /// Reads the DNS subtrees of an already parsed document (what the full config loader calls).
    public static func parse(table: TOMLTable, file: String, resolvConfPath: String = "/etc/resolv.conf") throws(DNSConfigurationError) -> DNSConfiguration {
        var reader = Reader(file: file, resolvConfPath: resolvConfPath)
        let server = try reader.optionalTable(table["server"], at: "server")
        let rootTable = try reader.optionalTable(server?["dns"], at: "server.dns")
        let root = try reader.resolver(rootTable, at: "server.dns", inheriting: nil)

        var virtualDomains: [String: Resolver] = [:]
        if let virtual = try reader.optionalTable(server?["virtual"], at: "server.virtual") {
            for domain in virtual.keys.sorted() {
                let path = "server.virtual.\"\(domain)\""
                guard let domainTable = try reader.optionalTable(virtual[domain], at: path),
                      let dnsTable = try reader.optionalTable(domainTable["dns"], at: "\(path).dns") else { continue }
                let normalized: String
                do {
                    normalized = try DNSName.normalize(domain)
                } catch {
                    throw DNSConfigurationError(file: file, keyPath: path, message: "\(error)")
                }
                virtualDomains[normalized] = try reader.resolver(dnsTable, at: "\(path).dns", inheriting: root)
            }
        }
        return DNSConfiguration(root: root, virtualDomains: virtualDomains)
    }
}

/// Walks the TOML tables, turning every mistake into a `DNSConfigurationError`.
private struct Reader {
    let file: String
    let resolvConfPath: String
    var resolvConf: ResolvConf? = nil

    init(file: String, resolvConfPath: String) {
        self.file = file
        self.resolvConfPath = resolvConfPath
    }

    static let dnsKeys = ["type", "servers", "options"]
    static let optionKeys = ["timeout", "attempts", "rotate", "validate", "ip_strategy", "cache_size",
                             "num_concurrent_reqs", "preserve_intermediates"]

    func error(_ path: String, _ message: String, suggestion: String? = nil) -> DNSConfigurationError {
        DNSConfigurationError(file: self.file, keyPath: path, message: message, suggestion: suggestion)
    }

    func optionalTable(_ value: (any TOMLValueConvertible)?, at path: String) throws(DNSConfigurationError) -> TOMLTable? {
        guard let value else { return nil }
        guard let table = value.table else {
            throw self.error(path, "expected a table, found \(DNSConfiguration.typeName(value))")
        }
        return table
    }

    func checkKeys(_ table: TOMLTable, allowed: [String], at path: String) throws(DNSConfigurationError) {
        for key in table.keys.sorted() where !allowed.contains(key) {
            throw self.error("\(path).\(key)", "unknown key", suggestion: Spelling.nearest(to: key, in: allowed))
        }
    }

    mutating func systemConfiguration(at path: String) throws(DNSConfigurationError) -> ResolvConf {
        if let conf = self.resolvConf { return conf }
        do {
            let conf = try ResolvConf.load(path: self.resolvConfPath)
            self.resolvConf = conf
            return conf
        } catch {
            throw DNSConfigurationError(file: self.resolvConfPath, keyPath: path, message: "cannot read: \(error)")
        }
    }

    /// A resolver from a `dns` table. Virtual domains start from the root's configuration and
    /// override only what their table sets.
    mutating func resolver(_ table: TOMLTable?, at path: String, inheriting parent: DNSConfiguration.Resolver?)
        throws(DNSConfigurationError) -> DNSConfiguration.Resolver
    {
        if let table { try self.checkKeys(table, allowed: Self.dnsKeys, at: path) }

        var type = parent?.type ?? .system
        if let value = table?["type"] {
            guard let text = value.string else {
                throw self.error("\(path).type", "expected a string, found \(DNSConfiguration.typeName(value))")
            }
            guard let parsed = DNSConfiguration.ResolverType(rawValue: text) else {
                throw self.error("\(path).type", "unknown resolver type '\(text)'",
                                 suggestion: Spelling.nearest(to: text, in: DNSConfiguration.ResolverType.allCases.map(\.rawValue), always: true))
            }
            type = parsed
        }

        let typeChanged = table?["type"] != nil
        var servers: [DNSServerAddress]
        var options: DNSResolverOptions
        var search: [String] = []
        var ndots = 1
        if let parent, !typeChanged {
            servers = parent.servers
            options = parent.options
            search = parent.search
            ndots = parent.ndots
        } else {
            options = parent?.options ?? DNSResolverOptions()
            switch type {
            case .system:
                let conf = try self.systemConfiguration(at: "\(path).type")
                servers = conf.nameservers
                if parent == nil {
                    if let timeout = conf.timeoutSeconds { options.timeout = .seconds(Int64(timeout)) }
                    if let attempts = conf.attempts { options.attempts = attempts }
                    if conf.rotate { options.rotate = true }
                }
                search = conf.search
                ndots = conf.ndots ?? 1
            case .google:
                servers = DNSConfiguration.googleServers
            case .cloudflare:
                servers = DNSConfiguration.cloudflareServers
            case .custom:
                servers = []
            }
        }

        if let value = table?["servers"] {
            guard type == .custom else {
                throw self.error("\(path).servers", "servers are only used with type = \"custom\" (type is \"\(type.rawValue)\")")
            }
            guard let array = value.array else {
                throw self.error("\(path).servers", "expected an array of \"ip:port\" strings, found \(DNSConfiguration.typeName(value))")
            }
            servers = []
            for (index, element) in array.enumerated() {
                guard let text = element.string, let server = DNSServerAddress(parsing: text) else {
                    throw self.error("\(path).servers[\(index)]",
                                     "expected \"ip\", \"ip:port\" or \"[ipv6]:port\", found \(element.string.map { "'\($0)'" } ?? DNSConfiguration.typeName(element))")
                }
                servers.append(server)
            }
        }
        if type == .custom && servers.isEmpty {
            throw self.error("\(path).servers", "type = \"custom\" needs at least one server")
        }

        if let optionsTable = try self.optionalTable(table?["options"], at: "\(path).options") {
            try self.readOptions(optionsTable, at: "\(path).options", into: &options)
        }
        return DNSConfiguration.Resolver(type: type, servers: servers, options: options, search: search, ndots: ndots)
    }

    func readOptions(_ table: TOMLTable, at path: String, into options: inout DNSResolverOptions) throws(DNSConfigurationError) {
        try self.checkKeys(table, allowed: Self.optionKeys, at: path)
        if let value = table["timeout"] {
            options.timeout = try self.duration(value, at: "\(path).timeout")
        }
        if let value = table["attempts"] {
            options.attempts = try self.integer(value, at: "\(path).attempts", range: 0...16)
        }
        if let value = table["rotate"] {
            options.rotate = try self.boolean(value, at: "\(path).rotate")
        }
        if let value = table["validate"] {
            options.validate = try self.boolean(value, at: "\(path).validate")
        }
        if let value = table["ip_strategy"] {
            let keyPath = "\(path).ip_strategy"
            guard let text = value.string else { throw self.error(keyPath, "expected a string, found \(DNSConfiguration.typeName(value))") }
            guard let strategy = IPStrategy(rawValue: text) else {
                throw self.error(keyPath, "unknown ip_strategy '\(text)'",
                                 suggestion: Spelling.nearest(to: text, in: IPStrategy.allCases.map(\.rawValue), always: true))
            }
            options.ipStrategy = strategy
        }
        if let value = table["cache_size"] {
            options.cacheSize = try self.integer(value, at: "\(path).cache_size", range: 0...10_000_000)
        }
        if let value = table["num_concurrent_reqs"] {
            options.numConcurrentReqs = try self.integer(value, at: "\(path).num_concurrent_reqs", range: 1...64)
        }
        if let value = table["preserve_intermediates"] {
            options.preserveIntermediates = try self.boolean(value, at: "\(path).preserve_intermediates")
        }
    }

    func boolean(_ value: any TOMLValueConvertible, at path: String) throws(DNSConfigurationError) -> Bool {
        guard value.type == .bool, let flag = value.bool else {
            throw self.error(path, "expected true or false, found \(DNSConfiguration.typeName(value))")
        }
        return flag
    }

    func integer(_ value: any TOMLValueConvertible, at path: String, range: ClosedRange<Int>) throws(DNSConfigurationError) -> Int {
        guard value.type == .int, let number = value.int else {
            throw self.error(path, "expected an integer, found \(DNSConfiguration.typeName(value))")
        }
        guard range.contains(number) else {
            throw self.error(path, "\(number) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    /// `"500ms"`, `"5s"`, `"1m"`, or a bare integer meaning seconds. Must be positive.
    func duration(_ value: any TOMLValueConvertible, at path: String) throws(DNSConfigurationError) -> TimeAmount {
        if value.type == .int, let seconds = value.int {
            guard seconds > 0, seconds <= 3600 else { throw self.error(path, "timeout of \(seconds)s is out of range 1...3600") }
            return .seconds(Int64(seconds))
        }
        guard value.type == .string, let text = value.string else {
            throw self.error(path, "expected a duration such as \"500ms\" or \"5s\", found \(DNSConfiguration.typeName(value))")
        }
        guard let amount = DurationText.parse(text) else {
            throw self.error(path, "invalid duration '\(text)' (use a whole number followed by ms, s or m)",
                             suggestion: DurationText.suggestion(for: text))
        }
        guard amount > .zero, amount <= .hours(1) else { throw self.error(path, "duration '\(text)' is out of range (0, 1h]") }
        return amount
    }
}

/// Duration strings of the configuration.
enum DurationText {
    static let units: [(String, Int64)] = [("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000)]

    static func parse(_ text: String) -> TimeAmount? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count)
        guard !digits.isEmpty, let number = Int64(digits),
              let scale = Self.units.first(where: { $0.0 == unit })?.1 else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: scale)
        return overflow ? nil : .nanoseconds(product)
    }

    /// For `"5"` suggest `"5s"`; for `"5sec"` suggest `"5s"`; for `"500 ms"` suggest `"500ms"`.
    static func suggestion(for text: String) -> String? {
        let compact = text.filter { $0 != " " }
        let digits = compact.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return nil }
        let unit = String(compact.dropFirst(digits.count))
        if unit.isEmpty { return "\(digits)s" }
        guard let nearest = Spelling.nearest(to: unit, in: ["ms", "s", "m", "sec", "secs", "seconds", "msec", "millis", "min"], always: true) else { return nil }
        let canonical: [String: String] = ["sec": "s", "secs": "s", "seconds": "s", "msec": "ms", "millis": "ms", "min": "m"]
        return "\(digits)\(canonical[nearest] ?? nearest)"
    }
}

extension DNSConfiguration {
    /// "a table", "an integer"...: how configuration errors name what was found.
    public static func typeName(_ value: any TOMLValueConvertible) -> String {
        switch value.type {
        case .table: return "a table"
        case .array: return "an array"
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a floating-point number"
        case .bool: return "a boolean"
        default: return "a date or time"
        }
    }
}
