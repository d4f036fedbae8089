import DNS
import DNSResolver
import NIOCore
import TOML

/// Reads the DNS tables of `vrules.toml`: `[server.dns]`, `[server.dns.options]` and every
/// `[server.virtual."<domain>".dns]`. Every mistake is reported, and reading goes on past
/// it, so one run of `vrules check` shows them all.
struct DNSSectionReader {
    static let dnsKeys = ["type", "servers", "options", "zones"]
    /// A virtual domain's or a routed zone's table: the keys of `[server.dns]` but `zones`.
    static let zoneKeys = ["type", "servers", "options"]
    static let optionKeys = ["timeout", "attempts", "rotate", "validate", "ip_strategy", "cache_size",
                             "num_concurrent_reqs", "preserve_intermediates", "trust_anchor_file"]
    /// The longest exchange timeout accepted.
    static let maximumTimeout: Duration = .seconds(3600)

    let values: ValueReader
    let resolvConfPath: String
    private var resolvConf: ResolvConf?

    init(file: String, resolvConfPath: String) {
        self.values = ValueReader(file: file)
        self.resolvConfPath = resolvConfPath
    }

    /// The DNS configuration from the `server` table (nil: no such table); mistakes go to `errors`.
    mutating func read(server: TOMLTable?, errors: inout [ConfigurationError]) -> DNSConfiguration {
        let serverPath = ConfigurationKeyPath.root.child("server")
        let dnsPath = serverPath.child("dns")
        var root = DNSConfiguration.Resolver(type: .system, servers: [], options: DNSResolverOptions())
        do throws(ConfigurationError) {
            var dns: (table: TOMLTable, entry: TOMLTable.Entry)?
            if let entry = server?.entry("dns") { dns = (try self.values.table(entry, at: dnsPath), entry) }
            if let resolver = self.resolver(dns, at: dnsPath, inheriting: nil, allowed: Self.dnsKeys, errors: &errors) { root = resolver }
        } catch {
            errors.append(error)
        }

        let zones = self.readZones(server: server, inheriting: root, errors: &errors)
        var virtualDomains: [String: DNSConfiguration.Resolver] = [:]
        let virtualPath = serverPath.child("virtual")
        var configuration = DNSConfiguration(root: root)
        configuration.zones = zones
        guard let virtualEntry = server?.entry("virtual") else { return configuration }
        let virtual: TOMLTable
        do throws(ConfigurationError) {
            virtual = try self.values.table(virtualEntry, at: virtualPath)
        } catch {
            errors.append(error)
            return configuration
        }
        for domain in virtual.keys {
            guard let domainEntry = virtual.entry(domain) else { continue }
            let domainPath = virtualPath.child(domain)
            do throws(ConfigurationError) {
                let domainTable = try self.values.table(domainEntry, at: domainPath)
                guard let dnsEntry = domainTable.entry("dns") else { continue }
                let dnsTable = try self.values.table(dnsEntry, at: domainPath.child("dns"))
                let normalized: String
                do {
                    normalized = try DNSName.normalize(domain)
                } catch {
                    throw self.values.error(.value, domainPath, at: domainEntry.keyPosition, TOMLText.escaped("\(error)", limit: 200))
                }
                if let resolver = self.resolver((dnsTable, dnsEntry), at: domainPath.child("dns"), inheriting: root, errors: &errors) {
                    virtualDomains[normalized] = resolver
                }
            } catch {
                errors.append(error)
            }
        }
        configuration.virtualDomains = virtualDomains
        return configuration
    }

    /// `[server.dns.zones."<zone>"]`: the same keys as `[server.dns]`, inheriting from it.
    private mutating func readZones(server: TOMLTable?, inheriting root: DNSConfiguration.Resolver,
                                    errors: inout [ConfigurationError]) -> [String: DNSConfiguration.Resolver] {
        let zonesPath = ConfigurationKeyPath.root.child("server").child("dns").child("zones")
        guard let dns = server?["dns"]?.table, let zonesEntry = dns.entry("zones") else { return [:] }
        var zones: [String: DNSConfiguration.Resolver] = [:]
        do throws(ConfigurationError) {
            let table = try self.values.table(zonesEntry, at: zonesPath)
            for zone in table.keys {
                guard let zoneEntry = table.entry(zone) else { continue }
                let zonePath = zonesPath.child(zone)
                do throws(ConfigurationError) {
                    let zoneTable = try self.values.table(zoneEntry, at: zonePath)
                    let normalized: String
                    do {
                        normalized = try DNSName.normalize(zone)
                    } catch {
                        throw self.values.error(.value, zonePath, at: zoneEntry.keyPosition, TOMLText.escaped("\(error)", limit: 200))
                    }
                    if let resolver = self.resolver((zoneTable, zoneEntry), at: zonePath, inheriting: root, errors: &errors) {
                        zones[normalized] = resolver
                    }
                } catch {
                    errors.append(error)
                }
            }
        } catch {
            errors.append(error)
        }
        return zones
    }

    private mutating func systemConfiguration(at path: ConfigurationKeyPath) throws(ConfigurationError) -> ResolvConf {
        if let conf = self.resolvConf { return conf }
        do {
            let conf = try ResolvConf.load(path: self.resolvConfPath)
            self.resolvConf = conf
            return conf
        } catch {
            throw ConfigurationError(file: self.resolvConfPath, position: TOMLPosition(line: 1, column: 1), keyPath: path.description,
                                     message: "cannot read: \(error)", kind: .unreadable)
        }
    }

    /// A resolver from a `dns` table, or nil when the table has mistakes (each one added to
    /// `errors`). Virtual domains start from the root's configuration and override only
    /// what their table sets.
    private mutating func resolver(_ dns: (table: TOMLTable, entry: TOMLTable.Entry)?, at path: ConfigurationKeyPath,
                                   inheriting parent: DNSConfiguration.Resolver?, allowed: [String] = Self.zoneKeys,
                                   errors: inout [ConfigurationError]) -> DNSConfiguration.Resolver?
    {
        let errorCount = errors.count
        let table = dns?.table
        let tablePosition = dns?.entry.keyPosition ?? TOMLPosition(line: 1, column: 1)
        if let table { errors += self.values.unknownKeys(table, allowed: allowed, at: path) }

        // The type decides the servers and whether `servers` may be set; when it is wrong,
        // only what does not depend on it (the options) is checked further.
        var type: DNSConfiguration.ResolverType? = parent?.type ?? .system
        let typeEntry = table?.entry("type")
        if let typeEntry {
            do throws(ConfigurationError) {
                type = try self.values.enumeration(typeEntry, at: path.child("type"), named: "resolver type")
            } catch {
                errors.append(error)
                type = nil
            }
        }

        var servers: [DNSServerAddress] = parent?.servers ?? []
        var options = parent?.options ?? DNSResolverOptions()
        var search: [String] = parent?.search ?? []
        var ndots = parent?.ndots ?? 1
        if let type, parent == nil || typeEntry != nil {
            search = []
            ndots = 1
            switch type {
            case .system:
                do throws(ConfigurationError) {
                    let conf = try self.systemConfiguration(at: path.child("type"))
                    servers = conf.nameservers
                    if parent == nil {
                        if let timeout = conf.timeoutSeconds { options.timeout = .seconds(Int64(timeout)) }
                        if let attempts = conf.attempts { options.attempts = attempts }
                        if conf.rotate { options.rotate = true }
                    }
                    search = conf.search
                    ndots = conf.ndots ?? 1
                } catch {
                    errors.append(error)
                }
            case .google:
                servers = DNSConfiguration.googleServers
            case .cloudflare:
                servers = DNSConfiguration.cloudflareServers
            case .custom:
                servers = []
            }
        }

        let serversPath = path.child("servers")
        let serversErrorCount = errors.count
        if let entry = table?.entry("servers"), let type {
            if type != .custom {
                errors.append(self.values.error(.value, serversPath, at: entry.keyPosition,
                                                "servers are only used with type = \"custom\" (type is \"\(type.rawValue)\")"))
            } else if let array = entry.value.array {
                servers = []
                for (index, element) in array.enumerated() {
                    guard let text = element.string, let server = DNSServerAddress(parsing: text) else {
                        errors.append(self.values.error(element.string == nil ? .type : .value, serversPath.element(index), at: element.position,
                                                        "expected \"ip\", \"ip:port\" or \"[ipv6]:port\", found \(element.string.map { "'\(TOMLText.escaped($0))'" } ?? element.typeName)"))
                        continue
                    }
                    servers.append(server)
                }
            } else {
                errors.append(self.values.error(.type, serversPath, at: entry.keyPosition,
                                                "expected an array of \"ip:port\" strings, found \(entry.value.typeName)"))
            }
        }
        if type == .custom && servers.isEmpty && errors.count == serversErrorCount {
            errors.append(self.values.error(.value, serversPath, at: table?.entry("servers")?.keyPosition ?? tablePosition,
                                            "type = \"custom\" needs at least one server"))
        }

        if let entry = table?.entry("options") {
            let optionsPath = path.child("options")
            do throws(ConfigurationError) {
                self.readOptions(try self.values.table(entry, at: optionsPath), at: optionsPath, into: &options, errors: &errors)
            } catch {
                errors.append(error)
            }
        }
        guard errors.count == errorCount, let type else { return nil }
        return DNSConfiguration.Resolver(type: type, servers: servers, options: options, search: search, ndots: ndots)
    }

    /// Each option on its own: one wrong option does not hide the next.
    private func readOptions(_ table: TOMLTable, at path: ConfigurationKeyPath, into options: inout DNSResolverOptions,
                             errors: inout [ConfigurationError]) {
        errors += self.values.unknownKeys(table, allowed: Self.optionKeys, at: path)
        func read(_ key: String, _ apply: (TOMLTable.Entry, ConfigurationKeyPath) throws(ConfigurationError) -> Void) {
            guard let entry = table.entry(key) else { return }
            do throws(ConfigurationError) {
                try apply(entry, path.child(key))
            } catch {
                errors.append(error)
            }
        }
        read("timeout") { entry, keyPath throws(ConfigurationError) in
            let timeout = try self.values.duration(entry, at: keyPath, maximum: Self.maximumTimeout)
            options.timeout = .nanoseconds(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        }
        read("attempts") { entry, keyPath throws(ConfigurationError) in
            options.attempts = Int(try self.values.integer(entry, at: keyPath, range: 0...16))
        }
        read("rotate") { entry, keyPath throws(ConfigurationError) in options.rotate = try self.values.boolean(entry, at: keyPath) }
        read("validate") { entry, keyPath throws(ConfigurationError) in options.validate = try self.values.boolean(entry, at: keyPath) }
        read("ip_strategy") { entry, keyPath throws(ConfigurationError) in
            options.ipStrategy = try self.values.enumeration(entry, at: keyPath, named: "ip_strategy")
        }
        read("cache_size") { entry, keyPath throws(ConfigurationError) in
            options.cacheSize = Int(try self.values.integer(entry, at: keyPath, range: 0...10_000_000))
        }
        read("num_concurrent_reqs") { entry, keyPath throws(ConfigurationError) in
            options.numConcurrentReqs = Int(try self.values.integer(entry, at: keyPath, range: 1...64))
        }
        read("preserve_intermediates") { entry, keyPath throws(ConfigurationError) in
            options.preserveIntermediates = try self.values.boolean(entry, at: keyPath)
        }
        read("trust_anchor_file") { entry, keyPath throws(ConfigurationError) in
            options.trustAnchors = try self.trustAnchors(entry, at: keyPath)
        }
    }

    /// `trust_anchor_file`: DS or DNSKEY records in zone-file syntax, replacing the built-in
    /// root anchors. A relative path is taken from the configuration file's folder. A file
    /// that cannot be read or parsed is an error naming its path and line.
    private func trustAnchors(_ entry: TOMLTable.Entry, at path: ConfigurationKeyPath) throws(ConfigurationError) -> DNSTrustAnchors {
        let given = try self.values.string(entry, at: path)
        var file = given
        if !given.hasPrefix("/"), let slash = self.values.file.lastIndex(of: "/") {
            file = String(self.values.file[...slash]) + given
        }
        let records: [DNSRecord]
        do {
            records = try ZoneFile.load(path: file, origin: "")
        } catch {
            let kind: ConfigurationError.Kind = error.line == 0 ? .unreadable : .value
            throw self.values.error(kind, path, at: entry.keyPosition, "trust anchor file \(error)")
        }
        guard let anchors = DNSTrustAnchors(records: records) else {
            throw self.values.error(.value, path, at: entry.keyPosition,
                                    "trust anchor file \(file): no DS or DNSKEY record in it")
        }
        return anchors
    }
}
