import DNS
import DNSResolver
import NIOCore
import TOML

/// Reads the DNS tables of `vrules.toml`: `[server.dns]`, `[server.dns.options]` and every
/// `[server.virtual."<domain>".dns]`. A resolver table with a mistake is reported once (its
/// first mistake) and reading goes on with the next, so one run shows every broken table.
struct DNSSectionReader {
    static let dnsKeys = ["type", "servers", "options"]
    static let optionKeys = ["timeout", "attempts", "rotate", "validate", "ip_strategy", "cache_size",
                             "num_concurrent_reqs", "preserve_intermediates"]
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
            root = try self.resolver(dns, at: dnsPath, inheriting: nil)
        } catch {
            errors.append(error)
        }

        var virtualDomains: [String: DNSConfiguration.Resolver] = [:]
        let virtualPath = serverPath.child("virtual")
        guard let virtualEntry = server?.entry("virtual") else { return DNSConfiguration(root: root) }
        let virtual: TOMLTable
        do throws(ConfigurationError) {
            virtual = try self.values.table(virtualEntry, at: virtualPath)
        } catch {
            errors.append(error)
            return DNSConfiguration(root: root)
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
                    throw self.values.error(.value, domainPath, at: domainEntry.keyPosition, "\(error)")
                }
                virtualDomains[normalized] = try self.resolver((dnsTable, dnsEntry), at: domainPath.child("dns"), inheriting: root)
            } catch {
                errors.append(error)
            }
        }
        return DNSConfiguration(root: root, virtualDomains: virtualDomains)
    }

    private mutating func systemConfiguration(at path: ConfigurationKeyPath, position: TOMLPosition) throws(ConfigurationError) -> ResolvConf {
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

    /// A resolver from a `dns` table. Virtual domains start from the root's configuration and
    /// override only what their table sets.
    private mutating func resolver(_ dns: (table: TOMLTable, entry: TOMLTable.Entry)?, at path: ConfigurationKeyPath,
                                   inheriting parent: DNSConfiguration.Resolver?) throws(ConfigurationError) -> DNSConfiguration.Resolver
    {
        let table = dns?.table
        let tablePosition = dns?.entry.keyPosition ?? TOMLPosition(line: 1, column: 1)
        if let table, let unknown = self.values.unknownKeys(table, allowed: Self.dnsKeys, at: path).first { throw unknown }

        var type = parent?.type ?? .system
        let typeEntry = table?.entry("type")
        if let typeEntry {
            type = try self.values.enumeration(typeEntry, at: path.child("type"), named: "resolver type")
        }

        var servers: [DNSServerAddress]
        var options: DNSResolverOptions
        var search: [String] = []
        var ndots = 1
        if let parent, typeEntry == nil {
            servers = parent.servers
            options = parent.options
            search = parent.search
            ndots = parent.ndots
        } else {
            options = parent?.options ?? DNSResolverOptions()
            switch type {
            case .system:
                let conf = try self.systemConfiguration(at: path.child("type"), position: typeEntry?.keyPosition ?? tablePosition)
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

        let serversPath = path.child("servers")
        if let entry = table?.entry("servers") {
            guard type == .custom else {
                throw self.values.error(.value, serversPath, at: entry.keyPosition,
                                        "servers are only used with type = \"custom\" (type is \"\(type.rawValue)\")")
            }
            guard let array = entry.value.array else {
                throw self.values.error(.type, serversPath, at: entry.keyPosition,
                                        "expected an array of \"ip:port\" strings, found \(entry.value.typeName)")
            }
            servers = []
            for (index, element) in array.enumerated() {
                guard let text = element.string, let server = DNSServerAddress(parsing: text) else {
                    throw self.values.error(element.string == nil ? .type : .value, serversPath.element(index), at: element.position,
                                            "expected \"ip\", \"ip:port\" or \"[ipv6]:port\", found \(element.string.map { "'\($0)'" } ?? element.typeName)")
                }
                servers.append(server)
            }
        }
        if type == .custom && servers.isEmpty {
            throw self.values.error(.value, serversPath, at: table?.entry("servers")?.keyPosition ?? tablePosition,
                                    "type = \"custom\" needs at least one server")
        }

        if let entry = table?.entry("options") {
            let optionsPath = path.child("options")
            try self.readOptions(try self.values.table(entry, at: optionsPath), at: optionsPath, into: &options)
        }
        return DNSConfiguration.Resolver(type: type, servers: servers, options: options, search: search, ndots: ndots)
    }

    private func readOptions(_ table: TOMLTable, at path: ConfigurationKeyPath, into options: inout DNSResolverOptions) throws(ConfigurationError) {
        if let unknown = self.values.unknownKeys(table, allowed: Self.optionKeys, at: path).first { throw unknown }
        if let entry = table.entry("timeout") {
            let timeout = try self.values.duration(entry, at: path.child("timeout"), maximum: Self.maximumTimeout)
            options.timeout = .nanoseconds(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        }
        if let entry = table.entry("attempts") {
            options.attempts = Int(try self.values.integer(entry, at: path.child("attempts"), range: 0...16))
        }
        if let entry = table.entry("rotate") {
            options.rotate = try self.values.boolean(entry, at: path.child("rotate"))
        }
        if let entry = table.entry("validate") {
            options.validate = try self.values.boolean(entry, at: path.child("validate"))
        }
        if let entry = table.entry("ip_strategy") {
            options.ipStrategy = try self.values.enumeration(entry, at: path.child("ip_strategy"), named: "ip_strategy")
        }
        if let entry = table.entry("cache_size") {
            options.cacheSize = Int(try self.values.integer(entry, at: path.child("cache_size"), range: 0...10_000_000))
        }
        if let entry = table.entry("num_concurrent_reqs") {
            options.numConcurrentReqs = Int(try self.values.integer(entry, at: path.child("num_concurrent_reqs"), range: 1...64))
        }
        if let entry = table.entry("preserve_intermediates") {
            options.preserveIntermediates = try self.values.boolean(entry, at: path.child("preserve_intermediates"))
        }
    }
}
