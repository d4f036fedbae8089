import ArgumentParser
import DNS
import DNSResolver
import Foundation
import OneLineText

/// `vrules dns lookup|rlookup|mx|iprev|query|dnsbl|spf`: ask the configured network resolver,
/// or zone files (`--zone`, as `vrules run` and a test's fixtures answer), from the shell, with
/// the same semantics as the rule API (`dns.lookup`, `dns.rlookup`, `dns.locate_mx`,
/// `dns.iprev`, `dns.query`, `dns.dnsbl`, `spf.check`), printing every query made on the way:
/// its outcome, records with TTLs, the server that answered and the time taken.
struct DNSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns",
        abstract: "Ask the configured resolver, or zone files, with vrules' own DNS semantics.",
        subcommands: [Lookup.self, ReverseLookupCommand.self, MXCommand.self, IprevCommand.self, QueryCommand.self,
                      DNSBLCommand.self, SPFCommand.self]
    )

    struct Options: ParsableArguments {
        @Option(help: "The configuration file (default: vrules.toml; when that file is missing, the system resolver).")
        var config: String?

        @Option(help: "Use the resolver of this virtual domain ([server.virtual.\"<domain>\".dns], walking up parents).")
        var domain: String?

        @Flag(help: "Print JSON instead of text.")
        var json = false

        @Flag(help: "Print the DNSSEC chain of trust of each query step by step (with validate = true).")
        var trace = false

        @OptionGroup var zones: ZoneOptions

        func validate() throws {
            guard !self.zones.isEmpty else { return }
            if self.domain != nil {
                throw ValidationError("--domain picks one of the configured resolvers; --zone answers instead of them")
            }
            if self.trace {
                throw ValidationError("--trace shows the network resolver's chain of trust; --zone answers instead of it")
            }
        }

        func loadConfiguration() throws -> ConfigurationFile {
            do {
                return try ConfigurationFile.load(path: self.config ?? "vrules.toml", isDefault: self.config == nil)
            } catch {
                throw UsageFailure.exit("\(error)")
            }
        }

        func makeResolver() throws -> DNSNetworkResolver {
            DNSResolverSet(configuration: try self.loadConfiguration().dns).networkResolver(forDomain: self.domain)
        }
    }

    struct Lookup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lookup", abstract: "Addresses of a name, ordered by ip_strategy (dns.lookup).")
        @OptionGroup var options: Options
        @Argument(help: "The name to look up.") var name: String

        func run() async throws {
            let name = try DNSCommand.normalize(self.name)
            try await DNSCommand.execute("lookup", subject: name, options: self.options) { resolver in
                let result = await resolver.run(AddressLookup(name: name, strategy: resolver.ipStrategy))
                return DNSCommand.report(result) { found in
                    (found.outcome.rawValue, found.addresses.map(\.description), ["addresses": found.addresses.map(\.description)])
                }
            }
        }
    }

    struct ReverseLookupCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rlookup", abstract: "PTR names of an IP address (dns.rlookup).")
        @OptionGroup var options: Options
        @Argument(help: "An IPv4 or IPv6 address.") var ip: String

        func run() async throws {
            let ip = try DNSCommand.address(self.ip)
            try await DNSCommand.execute("rlookup", subject: ip.description, options: self.options) { resolver in
                let result = await resolver.run(ReverseLookup(ip: ip))
                return DNSCommand.report(result) { found in
                    (found.outcome.rawValue, found.names, ["names": found.names])
                }
            }
        }
    }

    struct MXCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mx", abstract: "Where mail for a domain goes, RFC 5321 §5.1 and Null MX (dns.locate_mx).")
        @OptionGroup var options: Options
        @Argument(help: "The mail domain.") var domain: String

        func run() async throws {
            let domain = try DNSCommand.normalize(self.domain)
            try await DNSCommand.execute("mx", subject: domain, options: self.options) { resolver in
                let result = await resolver.run(MXLocation(domain: domain))
                return DNSCommand.report(result) { route in
                    let hosts = route.hosts.map { ["host": $0.host, "preference": Int($0.preference)] as [String: Any] }
                    return (route.kind.rawValue, route.hosts.map { "\($0.preference) \($0.host)" }, ["kind": route.kind.rawValue, "hosts": hosts])
                }
            }
        }
    }

    struct IprevCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "iprev", abstract: "Forward-confirmed reverse DNS, RFC 8601 iprev (dns.iprev).")
        @OptionGroup var options: Options
        @Argument(help: "An IPv4 or IPv6 address.") var ip: String

        func run() async throws {
            let ip = try DNSCommand.address(self.ip)
            try await DNSCommand.execute("iprev", subject: ip.description, options: self.options) { resolver in
                let result = await resolver.run(IprevCheck(ip: ip))
                var fields: [String: Any] = ["status": result.status.rawValue]
                if let name = result.name { fields["name"] = name }
                let failed = result.status == .temperror
                return Report(summary: result.status.rawValue, lines: result.name.map { [$0] } ?? [], fields: fields, failed: failed)
            }
        }
    }

    struct QueryCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "query", abstract: "The records of one type, with the CNAME chain (dns.query).")
        @OptionGroup var options: Options
        @Argument(help: "The name to query.") var name: String
        @Argument(help: "The record type (A, AAAA, MX, PTR, TXT, CNAME, NS, SOA, SRV or TYPEnn).") var type: String = "A"

        func run() async throws {
            let name = try DNSCommand.normalize(self.name)
            guard let type = DNSRecordType(name: self.type) else {
                throw UsageFailure.exit("unknown record type '\(self.type)'")
            }
            try await DNSCommand.execute("query", subject: "\(name) \(type)", options: self.options) { resolver in
                let result = await resolver.run(RecordQuery(name: name, type: type))
                return DNSCommand.report(result) { answer in
                    let lines = (answer.chain + answer.records).map(DNSCommand.presentation)
                    var fields: [String: Any] = [
                        "outcome": answer.outcome.rawValue, "secure": answer.secure,
                        "records": answer.records.map(DNSCommand.jsonRecord), "chain": answer.chain.map(DNSCommand.jsonRecord),
                    ]
                    DNSCommand.addSecurity(answer.security, to: &fields)
                    return ("\(answer.outcome.rawValue) \(answer.security.status.rawValue)", lines, fields)
                }
            }
        }
    }

    // MARK: - Running and printing

    /// What one command found, for text and JSON output.
    struct Report {
        var summary: String
        var lines: [String]
        var fields: [String: Any]
        var failed: Bool
    }

    static func report<Value>(_ result: Result<Value, DNSError>,
                              _ describe: (Value) -> (String, [String], [String: Any])) -> Report {
        switch result {
        case .success(let value):
            let (summary, lines, fields) = describe(value)
            return Report(summary: summary, lines: lines, fields: fields, failed: false)
        case .failure(let error):
            var fields: [String: Any] = ["error": error.kind.rawValue, "name": error.name, "type": error.type.description]
            if let detail = error.detail { fields["detail"] = detail }
            let security = Self.security(of: error)
            Self.addSecurity(security, to: &fields)
            return Report(summary: "error \(error.kind.rawValue) \(security.status.rawValue)", lines: [error.description],
                          fields: fields, failed: true)
        }
    }

    /// With `routed`, questions under a `[server.dns.zones]` zone go to that zone's resolver.
    /// With `--zone`, the zone files answer everything.
    static func execute(_ command: String, subject: String, options: Options, routed: Bool = false,
                        _ body: (TranscriptResolver) async -> Report) async throws {
        let resolver: TranscriptResolver
        let ipStrategy: IPStrategy
        let source: (text: String, key: String, names: [String])
        let configuration = try options.loadConfiguration()
        let zone: ZoneResolver?
        do {
            zone = try options.zones.makeResolver(options: configuration.dns.root.options.zoneOptions)
        } catch {
            throw UsageFailure.exit("\(error)")
        }
        if let zone {
            resolver = TranscriptResolver(zone, answersFromCache: false)
            ipStrategy = zone.ipStrategy
            source = ("zone", "zones", options.zones.zone)
        } else {
            let set = DNSResolverSet(configuration: configuration.dns)
            let network = set.networkResolver(forDomain: options.domain)
            resolver = TranscriptResolver(routed ? set.resolver(forDomain: options.domain) : network,
                                          tracing: options.trace && !routed ? network : nil)
            ipStrategy = network.ipStrategy
            source = ("servers", "servers", network.servers.map(\.description))
        }
        let started = DispatchTime.now()
        var report = await body(resolver)
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
        let transcript = resolver.transcript
        if report.fields["security"] == nil {
            // Commands that combine several queries (lookup, mx, iprev): the weakest status seen.
            let statuses = transcript.map { entry -> DNSSecurity in
                switch entry.result {
                case .success(let answer): return answer.security
                case .failure(let error): return Self.security(of: error)
                }
            }
            if let worst = statuses.max(by: { Self.rank($0.status) < Self.rank($1.status) }) {
                Self.addSecurity(worst, to: &report.fields)
            }
        }
        if options.json {
            var object: [String: Any] = ["command": command, "subject": subject, "result": report.fields,
                                         "milliseconds": elapsed, "queries": transcript.map(Self.json)]
            object[source.key] = source.names
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            // The subject may hold what a client sent (an SPF sender): one line, escaped.
            print(OneLine.escaped(";; \(command) \(subject) (ip_strategy \(ipStrategy.rawValue); \(source.text) \(source.names.joined(separator: " ")))"))
            // One line per item: a blocklist's TXT text, say, is what a DNS server sent.
            for entry in transcript { print(Self.text(entry)) }
            print(OneLine.escaped("\(command): \(report.summary)"))
            for line in report.lines { print(OneLine.escaped("  \(line)")) }
            print(String(format: ";; %.1f ms", elapsed))
        }
        if report.failed { throw ExitCode(1) }
    }

    /// The security of a failed lookup: what validation said, else bogus for an upstream's
    /// DNSSEC failure and indeterminate for anything else (nothing could be decided).
    static func security(of error: DNSError) -> DNSSecurity {
        if let security = error.security { return security }
        return DNSSecurity(error.kind == .bogus ? .bogus : .indeterminate, reason: error.kind == .bogus ? error.detail : nil)
    }

    static func rank(_ status: DNSSecurityStatus) -> Int {
        switch status {
        case .secure: return 0
        case .insecure: return 1
        case .indeterminate: return 2
        case .bogus: return 3
        }
    }

    static func addSecurity(_ security: DNSSecurity, to object: inout [String: Any]) {
        object["security"] = security.status.rawValue
        if let reason = security.reason { object["reason"] = reason }
    }

    /// `secure`, `insecure`, `bogus (reason)`, `indeterminate (reason)`.
    static func securityWords(_ security: DNSSecurity) -> String {
        guard let reason = security.reason else { return security.status.rawValue }
        return "\(security.status.rawValue) (\(reason))"
    }

    static func text(_ entry: TranscriptResolver.Entry) -> String {
        let timing = entry.fromCache ? "cache" : String(format: "%.1f ms", entry.milliseconds)
        var lines: [String]
        switch entry.result {
        case .success(let answer):
            lines = ["\(entry.question)  \(answer.outcome.rawValue)  \(Self.securityWords(answer.security))  from \(answer.server ?? "?")  \(timing)"]
            lines += (answer.chain + answer.records).map { "    " + Self.presentation($0) }
        case .failure(let error):
            lines = ["\(entry.question)  error \(error.kind.rawValue)  \(Self.securityWords(Self.security(of: error)))  \(timing)",
                     "    \(error.description)"]
        }
        lines += entry.trace.map { ";; trace: " + $0 }
        return lines.map(OneLine.escaped).joined(separator: "\n")
    }

    static func json(_ entry: TranscriptResolver.Entry) -> [String: Any] {
        var object: [String: Any] = ["name": entry.question.name, "type": entry.question.type.description,
                                     "milliseconds": entry.milliseconds, "cache": entry.fromCache]
        switch entry.result {
        case .success(let answer):
            object["outcome"] = answer.outcome.rawValue
            object["secure"] = answer.secure
            Self.addSecurity(answer.security, to: &object)
            object["server"] = answer.server ?? NSNull()
            object["records"] = answer.records.map(Self.jsonRecord)
            object["chain"] = answer.chain.map(Self.jsonRecord)
        case .failure(let error):
            object["error"] = error.kind.rawValue
            object["detail"] = error.detail ?? NSNull()
            Self.addSecurity(Self.security(of: error), to: &object)
        }
        if !entry.trace.isEmpty { object["trace"] = entry.trace }
        return object
    }

    static func jsonRecord(_ record: DNSRecord) -> [String: Any] {
        ["name": record.name, "ttl": Int(record.ttl), "type": record.type.description, "data": Self.rdata(record.data)]
    }

    /// One record in zone-file presentation form.
    static func presentation(_ record: DNSRecord) -> String {
        "\(Self.fqdn(record.name)) \(record.ttl) IN \(record.type) \(Self.rdata(record.data))"
    }

    static func fqdn(_ name: String) -> String { name.isEmpty ? "." : name + "." }

    static func rdata(_ data: DNSRecordData) -> String {
        switch data {
        case .a(let ip), .aaaa(let ip): return ip.description
        case .ns(let name), .cname(let name), .ptr(let name): return Self.fqdn(name)
        case .mx(let preference, let exchange): return "\(preference) \(Self.fqdn(exchange))"
        case .txt(let strings): return strings.map(Self.quoted).joined(separator: " ")
        case .soa(let soa):
            return "\(Self.fqdn(soa.mname)) \(Self.fqdn(soa.rname)) \(soa.serial) \(soa.refresh) \(soa.retry) \(soa.expire) \(soa.minimum)"
        case .srv(let priority, let weight, let port, let target): return "\(priority) \(weight) \(port) \(Self.fqdn(target))"
        case .unknown(_, let bytes):
            return "\\# \(bytes.count) " + bytes.map { String(format: "%02x", $0) }.joined()
        }
    }

    static func quoted(_ bytes: [UInt8]) -> String {
        var text = "\""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): text += "\\" + String(UnicodeScalar(byte))
            case 0x20...0x7E: text += String(UnicodeScalar(byte))
            default: text += String(format: "\\%03d", byte)
            }
        }
        return text + "\""
    }

    static func normalize(_ name: String) throws -> String {
        do {
            return try DNSName.normalize(name)
        } catch {
            throw UsageFailure.exit(error.description)
        }
    }

    static func address(_ text: String) throws -> IPAddress {
        guard let ip = IPAddress(text) else { throw UsageFailure.exit("'\(text)' is not an IPv4 or IPv6 address") }
        return ip
    }
}

/// Forwards to the network resolver and keeps every question with its result and timing,
/// so that the command can show each query a lookup made.
final class TranscriptResolver: DNSResolving, @unchecked Sendable {
    // @unchecked: `entries` is touched only with `lock` held.
    struct Entry {
        var question: DNSQuestion
        var result: DNSQueryResult
        var milliseconds: Double
        var fromCache: Bool
        /// The chain of trust step by step, with `--trace`.
        var trace: [String] = []
    }

    private let base: any DNSResolving
    /// With `--trace`: the network resolver, asked with its trace on instead of `base`.
    private let tracing: DNSNetworkResolver?
    /// Whether an answer given at once came from a cache (a zone file's answers come at once too).
    private let answersFromCache: Bool
    private let lock = NSLock()
    private var entries: [Entry] = []

    init(_ base: any DNSResolving, tracing: DNSNetworkResolver? = nil, answersFromCache: Bool = true) {
        self.base = base
        self.tracing = tracing
        self.answersFromCache = answersFromCache
    }

    var transcript: [Entry] {
        self.lock.lock()
        defer { self.lock.unlock() }
        return self.entries
    }

    var ipStrategy: IPStrategy { self.base.ipStrategy }
    var rotatesRecords: Bool { self.base.rotatesRecords }

    func immediateResult(for question: DNSQuestion) -> DNSQueryResult? {
        guard self.tracing == nil else { return nil }
        guard let result = self.base.immediateResult(for: question) else { return nil }
        self.append(Entry(question: question, result: result, milliseconds: 0, fromCache: self.answersFromCache))
        return result
    }

    func resolve(_ question: DNSQuestion) async -> DNSQueryResult {
        let started = DispatchTime.now()
        var trace: [String] = []
        let result: DNSQueryResult
        if let tracing = self.tracing {
            (result, trace) = await tracing.resolveTracing(question)
        } else {
            result = await self.base.resolve(question)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
        self.append(Entry(question: question, result: result, milliseconds: elapsed, fromCache: false, trace: trace))
        return result
    }

    private func append(_ entry: Entry) {
        self.lock.lock()
        self.entries.append(entry)
        self.lock.unlock()
    }
}
