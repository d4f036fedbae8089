import Foundation
import DNS
import Lua

/// The `dns.*` functions: argument checks, the lookup plan each one runs, and how its
/// result looks in Lua. A call answered from immediate data returns at once; otherwise
/// the coroutine yields and `RuleEngine` resumes it when the answers arrive.
extension RuleHost {
    func startDNSCall(_ function: HostFunction, run: StageRun, thread: LuaThread) -> LuaHostReturn {
        let call: any PendingDNSCall
        switch self.makeDNSCall(function, resolver: run.resolver, thread: thread) {
        case .success(let made): call = made
        case .failure(let error):
            self.lua.pushString(error.message, thread)
            return .error
        }
        return run.withTrace { trace in
            call.advanceImmediately(using: run.resolver, trace: &trace)
            if call.neededQuestions != nil {
                run.pending = call
                return .yield
            }
            switch call.pushResult(host: self, thread: thread, trace: &trace) {
            case .success(let count):
                return .values(count)
            case .failure(let error):
                self.pushDNSError(error, thread: thread)
                return .raise
            }
        }
    }

    private func nameArgument(_ function: String, thread: LuaThread) -> Result<String, HostCallError> {
        guard let text = self.lua.string(at: 1, thread) else {
            return .failure(HostCallError("\(function): expected a domain name string, got \(self.lua.type(at: 1, thread).name)"))
        }
        do {
            return .success(try DNSName.normalize(text))
        } catch {
            return .failure(HostCallError("\(function): \(error)"))
        }
    }

    private func ipArgument(_ function: String, thread: LuaThread) -> Result<IPAddress, HostCallError> {
        guard let text = self.lua.string(at: 1, thread) else {
            return .failure(HostCallError("\(function): expected an IP address string, got \(self.lua.type(at: 1, thread).name)"))
        }
        guard let ip = IPAddress(text) else { return .failure(HostCallError("\(function): invalid IP address '\(text)'")) }
        return .success(ip)
    }

    private func makeDNSCall(_ function: HostFunction, resolver: any DNSResolving, thread: LuaThread) -> Result<any PendingDNSCall, HostCallError> {
        switch function {
        case .dnsLookup:
            return self.nameArgument("dns.lookup", thread: thread).map { name in
                DNSCall(function: "dns.lookup", argument: name,
                        plan: AddressLookup(name: name, strategy: resolver.ipStrategy),
                        summarize: { Self.summary($0.map { "\($0.outcome.rawValue) [\($0.addresses.map(\.description).joined(separator: ", "))]" }) },
                        push: { host, thread, output in
                            output.map { result in
                                host.lua.pushStringArray(result.addresses.map(\.description), fieldCount: 1, thread)
                                host.setSecure(result.secure, thread: thread)
                                host.lua.pushString(result.outcome.rawValue, thread)
                                return 2
                            }
                        })
            }
        case .dnsRlookup:
            return self.ipArgument("dns.rlookup", thread: thread).map { ip in
                DNSCall(function: "dns.rlookup", argument: ip.description, plan: ReverseLookup(ip: ip),
                        summarize: { Self.summary($0.map { "\($0.outcome.rawValue) [\($0.names.joined(separator: ", "))]" }) },
                        push: { host, thread, output in
                            output.map { result in
                                host.lua.pushStringArray(result.names, fieldCount: 1, thread)
                                host.setSecure(result.secure, thread: thread)
                                host.lua.pushString(result.outcome.rawValue, thread)
                                return 2
                            }
                        })
            }
        case .dnsLocateMX:
            return self.nameArgument("dns.locate_mx", thread: thread).map { domain in
                DNSCall(function: "dns.locate_mx", argument: domain, plan: MXLocation(domain: domain),
                        summarize: { Self.summary($0.map { route in
                            "\(route.kind.rawValue) [\(route.hosts.map { "\($0.preference) \($0.host.isEmpty ? "." : $0.host)" }.joined(separator: ", "))]"
                        }) },
                        push: { host, thread, output in
                            output.map { route in
                                let lua = host.lua
                                lua.newTable(arrayCount: Int32(route.hosts.count), fieldCount: 2, thread)
                                for (index, mx) in route.hosts.enumerated() {
                                    lua.newTable(fieldCount: 2, thread)
                                    lua.pushString(mx.host, thread); lua.setField("host", table: -2, thread)
                                    lua.pushInteger(Int(mx.preference), thread); lua.setField("preference", table: -2, thread)
                                    lua.setIndex(index + 1, table: -2, thread)
                                }
                                lua.pushString(route.kind.rawValue, thread); lua.setField("kind", table: -2, thread)
                                host.setSecure(route.secure, thread: thread)
                                return 1
                            }
                        })
            }
        case .dnsIprev:
            return self.ipArgument("dns.iprev", thread: thread).map { ip in
                DNSCall(function: "dns.iprev", argument: ip.description, plan: IprevCheck(ip: ip),
                        summarize: { "\($0.status.rawValue)\($0.name.map { " " + $0 } ?? "")" },
                        push: { host, thread, result in
                            let lua = host.lua
                            lua.newTable(fieldCount: 3, thread)
                            lua.pushString(result.status.rawValue, thread); lua.setField("status", table: -2, thread)
                            if let name = result.name { lua.pushString(name, thread); lua.setField("name", table: -2, thread) }
                            host.setSecure(result.secure, thread: thread)
                            return .success(1)
                        })
            }
        case .dnsDNSBL:
            return self.dnsblArguments(thread: thread).map { subject, zones in
                DNSCall(function: "dns.dnsbl", argument: "\(subject.text) \(zones.joined(separator: ","))",
                        plan: DNSBLCheck(subject: subject.parsed, zones: zones, policies: self.dnsblPolicies,
                                         health: self.dnsblHealth),
                        summarize: { results in results.map { "\($0.zone) \($0.status.rawValue)" }.joined(separator: ", ") },
                        push: { host, thread, results in
                            host.pushDNSBLResults(results, thread: thread)
                            return .success(1)
                        })
            }
        case .spfCheckHost:
            return self.spfArguments(thread: thread).map { arguments in
                DNSCall(function: arguments.identity == "helo" ? "spf.check (helo)" : "spf.check_host",
                        argument: "\(arguments.ip) \(arguments.domain) <\(arguments.sender)>",
                        plan: SPFCheck(ip: arguments.ip, domain: arguments.domain, sender: arguments.sender,
                                       helo: arguments.helo, receiver: arguments.receiver),
                        summarize: { "\($0.result.rawValue)\($0.mechanism.map { " (\($0))" } ?? "")" },
                        push: { host, thread, result in
                            host.pushSPFResult(result, identity: arguments.identity, ip: arguments.ip, sender: arguments.sender,
                                               helo: arguments.helo, receiver: arguments.receiver, thread: thread)
                            return .success(1)
                        })
            }
        case .dnsQuery:
            guard let typeName = self.lua.string(at: 2, thread) else {
                return .failure(HostCallError("dns.query: expected a record type string as the second argument (e.g. \"TXT\")"))
            }
            guard let type = DNSRecordType(name: typeName) else {
                return .failure(HostCallError("dns.query: unknown record type '\(typeName)'"))
            }
            return self.nameArgument("dns.query", thread: thread).map { name in
                DNSCall(function: "dns.query", argument: "\(name) \(type)", plan: RecordQuery(name: name, type: type),
                        summarize: { Self.summary($0.map { "\($0.outcome.rawValue) \($0.records.count) records" }) },
                        push: { host, thread, output in
                            output.map { answer in
                                let lua = host.lua
                                lua.newTable(arrayCount: Int32(answer.records.count), fieldCount: 2, thread)
                                for (index, record) in answer.records.enumerated() {
                                    host.pushRecord(record, thread: thread)
                                    lua.setIndex(index + 1, table: -2, thread)
                                }
                                if !answer.chain.isEmpty {
                                    lua.newTable(arrayCount: Int32(answer.chain.count), thread)
                                    for (index, record) in answer.chain.enumerated() {
                                        host.pushRecord(record, thread: thread)
                                        lua.setIndex(index + 1, table: -2, thread)
                                    }
                                    lua.setField("chain", table: -2, thread)
                                }
                                host.setSecure(answer.secure, thread: thread)
                                lua.pushString(answer.outcome.rawValue, thread)
                                return 2
                            }
                        })
            }
        case .log, .readModule, .traceRule, .makeReply, .parseReply, .checkReply, .suggest, .addHeader:
            return .failure(HostCallError("not a DNS function"))
        }
    }

    /// At most this many zones per call: each is a query, all asked at once.
    static let maximumDNSBLZones = 32

    private func dnsblArguments(thread: LuaThread) -> Result<((text: String, parsed: DNSBLSubject), [String]), HostCallError> {
        guard let text = self.lua.string(at: 1, thread) else {
            return .failure(HostCallError("dns.dnsbl: expected an IP address or a domain name as the subject, got \(self.lua.type(at: 1, thread).name)"))
        }
        guard let subject = DNSBLSubject(text) else {
            return .failure(HostCallError("dns.dnsbl: '\(text)' is neither an IP address nor a domain name"))
        }
        var zoneNames: [String] = []
        switch self.lua.type(at: 2, thread) {
        case .string:
            zoneNames = [self.lua.string(at: 2, thread) ?? ""]
        case .table:
            let count = self.lua.rawLength(at: 2, thread)
            guard count <= Self.maximumDNSBLZones else {
                return .failure(HostCallError("dns.dnsbl: at most \(Self.maximumDNSBLZones) zones per call, got \(count)"))
            }
            for index in 0..<count {
                self.lua.getIndex(index + 1, table: 2, thread)
                defer { self.lua.pop(1, thread) }
                guard let zone = self.lua.string(at: -1, thread) else {
                    return .failure(HostCallError("dns.dnsbl: zone \(index + 1) is a \(self.lua.type(at: -1, thread).name), not a string"))
                }
                zoneNames.append(zone)
            }
        default:
            return .failure(HostCallError("dns.dnsbl: expected a zone or a list of zones, got \(self.lua.type(at: 2, thread).name)"))
        }
        var zones: [String] = []
        for zone in zoneNames {
            do {
                let name = try DNSName.normalize(zone)
                guard !name.isEmpty else { return .failure(HostCallError("dns.dnsbl: empty zone name")) }
                zones.append(name)
            } catch {
                return .failure(HostCallError("dns.dnsbl: \(error)"))
            }
        }
        return .success(((text, subject), zones))
    }

    /// `{ { zone, status, codes, text, reason }, ... }`, each also under its zone's name.
    func pushDNSBLResults(_ results: [DNSBLResult], thread: LuaThread) {
        let lua = self.lua
        lua.newTable(arrayCount: Int32(results.count), fieldCount: Int32(results.count), thread)
        for (index, result) in results.enumerated() {
            lua.newTable(fieldCount: 6, thread)
            lua.pushString(result.zone, thread); lua.setField("zone", table: -2, thread)
            self.setSecure(result.secure, thread: thread)
            lua.pushString(result.status.rawValue, thread); lua.setField("status", table: -2, thread)
            lua.pushStringArray(result.codes, thread); lua.setField("codes", table: -2, thread)
            if let text = result.text { lua.pushString(text, thread); lua.setField("text", table: -2, thread) }
            if let reason = result.reason { lua.pushString(reason, thread); lua.setField("reason", table: -2, thread) }
            lua.pushValue(at: -1, thread)
            lua.setField(result.zone, table: -3, thread)
            lua.setIndex(index + 1, table: -2, thread)
        }
    }

    /// Sets `secure` on the table at the top of the stack: every `dns.*` result carries it.
    func setSecure(_ secure: Bool, thread: LuaThread) {
        self.lua.pushBoolean(secure, thread)
        self.lua.setField("secure", table: -2, thread)
    }

    static func summary(_ result: Result<String, DNSError>) -> String {
        switch result {
        case .success(let text): return text
        case .failure(let error): return "error \(error.kind.rawValue)"
        }
    }


    /// A record as a Lua table: `name`, `type`, `ttl`, and the type's own fields.
    func pushRecord(_ record: DNSRecord, thread: LuaThread) {
        let lua = self.lua
        lua.newTable(fieldCount: 6, thread)
        func set(_ key: String, _ value: String) { lua.pushString(value, thread); lua.setField(key, table: -2, thread) }
        func set(_ key: String, _ value: Int) { lua.pushInteger(value, thread); lua.setField(key, table: -2, thread) }
        set("name", record.name)
        set("type", record.type.description)
        set("ttl", Int(record.ttl))
        switch record.data {
        case .a(let ip), .aaaa(let ip): set("address", ip.description)
        case .ns(let name), .cname(let name), .ptr(let name): set("target", name)
        case .mx(let preference, let exchange):
            set("preference", Int(preference))
            set("exchange", exchange)
        case .txt(let strings):
            set("text", strings.map { String(decoding: $0, as: UTF8.self) }.joined())
            lua.newTable(arrayCount: Int32(strings.count), thread)
            for (index, string) in strings.enumerated() {
                lua.pushString(String(decoding: string, as: UTF8.self), thread)
                lua.setIndex(index + 1, table: -2, thread)
            }
            lua.setField("strings", table: -2, thread)
        case .soa(let soa):
            set("mname", soa.mname); set("rname", soa.rname)
            set("serial", Int(soa.serial)); set("refresh", Int(soa.refresh)); set("retry", Int(soa.retry))
            set("expire", Int(soa.expire)); set("minimum", Int(soa.minimum))
        case .srv(let priority, let weight, let port, let target):
            set("priority", Int(priority)); set("weight", Int(weight)); set("port", Int(port)); set("target", target)
        case .unknown(_, let data):
            set("data", data.map { String(format: "%02x", $0) }.joined())
        }
    }
}

struct HostCallError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
