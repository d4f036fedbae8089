import Foundation
import DNS
import Lua

/// The `dns.*` functions: argument checks, the lookup plan each one runs, and how its
/// result looks in Lua. A call answered from immediate data returns at once; otherwise
/// the coroutine yields and `RuleEngine` resumes it when the answers arrive.
extension RuleHost {
    func startDNSCall(_ function: HostFunction, run: StageRun, thread: LuaThread) -> LuaHostReturn {
        run.dnsCalls += 1
        guard run.dnsCalls <= self.limits.dnsCallsPerStage else {
            self.boundObserver?(.dnsCalls)
            // Asks nothing; a rule that catches the error gets it again at each further call.
            self.lua.pushString("DNS calls past \(self.limits.dnsCallsPerStage) in one stage ([limits] dns_calls)", thread)
            return .error
        }
        switch function {
        case .dnsLookup:
            return self.start(self.nameArgument("dns.lookup", thread: thread).map {
                AddressLookupCall(name: $0, strategy: run.resolver.ipStrategy)
            }, run: run, thread: thread)
        case .dnsRlookup:
            return self.start(self.ipArgument("dns.rlookup", thread: thread).map(ReverseLookupCall.init), run: run, thread: thread)
        case .dnsLocateMX:
            return self.start(self.nameArgument("dns.locate_mx", thread: thread).map(MXLocationCall.init), run: run, thread: thread)
        case .dnsIprev:
            return self.start(self.ipArgument("dns.iprev", thread: thread).map(IprevCall.init), run: run, thread: thread)
        case .dnsDNSBL:
            return self.start(self.dnsblArguments(thread: thread).map { subject, zones in
                DNSBLCall(subjectText: subject.text, subject: subject.parsed, zones: zones, policies: self.dnsblPolicies,
                          health: self.dnsblHealth)
            }, run: run, thread: thread)
        case .spfCheckHost:
            return self.start(self.spfArguments(thread: thread, memo: run.resolver.spfResultMemo), run: run, thread: thread)
        case .dnsQuery:
            return self.start(self.queryArguments(thread: thread), run: run, thread: thread)
        case .log, .readModule, .traceRule, .makeReply, .parseReply, .checkReply, .suggest, .addHeader:
            self.lua.pushString("not a DNS function", thread)
            return .error
        }
    }

    /// Runs the call as far as immediate answers allow: finished, it returns its values at
    /// once; otherwise the coroutine yields and `StageRun` resumes it when the answers arrive.
    private func start<Call: DNSFunctionCall>(_ made: Result<Call, HostCallError>, run: StageRun,
                                              thread: LuaThread) -> LuaHostReturn {
        let call: Call
        switch made {
        case .success(let made): call = made
        case .failure(let error):
            self.lua.pushString(error.message, thread)
            return .error
        }
        return run.withTrace { trace in
            var plan = call.makePlan()
            let step = Call.advance(&plan, from: plan.start(), using: run.resolver, trace: &trace)
            guard case .done(let output) = step else {
                run.pending = DNSCall(call, plan: plan, step: step)
                return .yield
            }
            switch call.finish(output, of: plan, host: self, thread: thread, trace: &trace) {
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
        // "" would ask about the root zone. It is the domain of a bounce's sender and of
        // RCPT TO:<postmaster>, and a route of kind "none" for it would refuse them all: a
        // script error instead.
        guard !text.isEmpty else { return .failure(HostCallError(Self.emptyNameMessage(function))) }
        do {
            return .success(try DNSName.normalize(text))
        } catch {
            return .failure(HostCallError("\(function): \(error)"))
        }
    }

    static func emptyNameMessage(_ function: String) -> String {
        "\(function): empty domain name (a bounce's ctx.mail_from.domain and <postmaster>'s ctx.rcpt.domain are \"\": check for them first; \".\" is the root)"
    }

    private func ipArgument(_ function: String, thread: LuaThread) -> Result<IPAddress, HostCallError> {
        guard let text = self.lua.string(at: 1, thread) else {
            return .failure(HostCallError("\(function): expected an IP address string, got \(self.lua.type(at: 1, thread).name)"))
        }
        guard let ip = IPAddress(text) else { return .failure(HostCallError("\(function): invalid IP address '\(text)'")) }
        return .success(ip)
    }

    private func queryArguments(thread: LuaThread) -> Result<RecordQueryCall, HostCallError> {
        guard let typeName = self.lua.string(at: 2, thread) else {
            return .failure(HostCallError("dns.query: expected a record type string as the second argument (e.g. \"TXT\")"))
        }
        guard let type = DNSRecordType(name: typeName) else {
            return .failure(HostCallError("dns.query: unknown record type '\(typeName)'"))
        }
        return self.nameArgument("dns.query", thread: thread).map { RecordQueryCall(name: $0, type: type) }
    }

    /// At most this many zones per call: each is a query, all asked at once.
    static let maximumDNSBLZones = 32

    private func dnsblArguments(thread: LuaThread) -> Result<((text: String, parsed: DNSBLSubject), [String]), HostCallError> {
        guard let text = self.lua.string(at: 1, thread) else {
            return .failure(HostCallError("dns.dnsbl: expected an IP address or a domain name as the subject, got \(self.lua.type(at: 1, thread).name)"))
        }
        guard !text.isEmpty else { return .failure(HostCallError(Self.emptyNameMessage("dns.dnsbl"))) }
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
                zones.append(try DNSBLZone.name(zone))
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
            lua.setField(named: result.zone, table: -3, thread)
            lua.setIndex(index + 1, table: -2, thread)
        }
    }

    /// Sets `secure` on the table at the top of the stack: every `dns.*` result carries it.
    func setSecure(_ secure: Bool, thread: LuaThread) {
        self.lua.pushBoolean(secure, thread)
        self.lua.setField("secure", table: -2, thread)
    }


    /// A record as a Lua table: `name`, `type`, `ttl`, and the type's own fields.
    func pushRecord(_ record: DNSRecord, thread: LuaThread) {
        let lua = self.lua
        lua.newTable(fieldCount: 6, thread)
        func set(_ key: StaticString, _ value: String) { lua.pushString(value, thread); lua.setField(key, table: -2, thread) }
        func set(_ key: StaticString, _ value: Int) { lua.pushInteger(value, thread); lua.setField(key, table: -2, thread) }
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
