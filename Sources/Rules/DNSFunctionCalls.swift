import DNS

/// The `dns.*` and `spf.*` functions, each as the lookup plan it runs and the Lua value it
/// returns (docs/lua-api.md describes the values).

/// `dns.lookup(name)` → `{ addresses..., secure = }, outcome`
struct AddressLookupCall: DNSFunctionCall {
    let name: String
    let strategy: IPStrategy
    var function: String { "dns.lookup" }
    var argument: String { self.name }
    func makePlan() -> AddressLookup { AddressLookup(name: self.name, strategy: self.strategy) }

    func summarize(_ output: AddressLookup.Output) -> String {
        output.summary { "\($0.outcome.rawValue) [\($0.addresses.map(\.description).joined(separator: ", "))]" }
    }

    func push(_ output: AddressLookup.Output, host: RuleHost, thread: LuaThreadHandle) -> Result<Int32, DNSError> {
        output.map { host.pushList($0.addresses.map(\.description), secure: $0.secure, outcome: $0.outcome, thread: thread) }
    }
}

/// `dns.rlookup(ip)` → `{ names..., secure = }, outcome`
struct ReverseLookupCall: DNSFunctionCall {
    let ip: IPAddress
    var function: String { "dns.rlookup" }
    var argument: String { self.ip.description }
    func makePlan() -> ReverseLookup { ReverseLookup(ip: self.ip) }

    func summarize(_ output: ReverseLookup.Output) -> String {
        output.summary { "\($0.outcome.rawValue) [\($0.names.joined(separator: ", "))]" }
    }

    func push(_ output: ReverseLookup.Output, host: RuleHost, thread: LuaThreadHandle) -> Result<Int32, DNSError> {
        output.map { host.pushList($0.names, secure: $0.secure, outcome: $0.outcome, thread: thread) }
    }
}

/// `dns.locate_mx(domain)` → `{ { host =, preference = }..., kind =, secure = }`
struct MXLocationCall: DNSFunctionCall {
    let domain: String
    var function: String { "dns.locate_mx" }
    var argument: String { self.domain }
    func makePlan() -> MXLocation { MXLocation(domain: self.domain) }

    func summarize(_ output: MXLocation.Output) -> String {
        output.summary { route in
            "\(route.kind.rawValue) [\(route.hosts.map { "\($0.preference) \($0.host.isEmpty ? "." : $0.host)" }.joined(separator: ", "))]"
        }
    }

    func push(_ output: MXLocation.Output, host: RuleHost, thread: LuaThreadHandle) -> Result<Int32, DNSError> {
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
    }
}

/// `dns.iprev(ip)` → `{ status =, name =, secure = }` (never raises: DNS trouble is `temperror`)
struct IprevCall: DNSFunctionCall {
    let ip: IPAddress
    var function: String { "dns.iprev" }
    var argument: String { self.ip.description }
    func makePlan() -> IprevCheck { IprevCheck(ip: self.ip) }

    func summarize(_ output: IprevResult) -> String {
        "\(output.status.rawValue)\(output.name.map { " " + $0 } ?? "")"
    }

    func push(_ output: IprevResult, host: RuleHost, thread: LuaThreadHandle) -> Result<Int32, DNSError> {
        let lua = host.lua
        lua.newTable(fieldCount: 3, thread)
        lua.pushString(output.status.rawValue, thread); lua.setField("status", table: -2, thread)
        if let name = output.name { lua.pushString(name, thread); lua.setField("name", table: -2, thread) }
        host.setSecure(output.secure, thread: thread)
        return .success(1)
    }
}

/// `dns.dnsbl(subject, zones)` → one result per zone, in order and by zone name
struct DNSBLCall: DNSFunctionCall {
    let subjectText: String
    let subject: DNSBLSubject
    let zones: [String]
    let policies: DNSBLPolicies
    let health: DNSBLHealth
    var function: String { "dns.dnsbl" }
    var argument: String { "\(self.subjectText) \(self.zones.joined(separator: ","))" }

    func makePlan() -> DNSBLCheck {
        DNSBLCheck(subject: self.subject, zones: self.zones, policies: self.policies, health: self.health)
    }

    func summarize(_ output: [DNSBLResult]) -> String {
        output.map { "\($0.zone) \($0.status.rawValue)" }.joined(separator: ", ")
    }

    func push(_ output: [DNSBLResult], host: RuleHost, thread: LuaThreadHandle) -> Result<Int32, DNSError> {
        host.pushDNSBLResults(output, thread: thread)
        return .success(1)
    }
}

/// `spf.check_host(...)` and `spf.check(ctx)` → the SPF result table (never raises)
struct SPFCall: DNSFunctionCall {
    let ip: IPAddress
    let domain: String
    let sender: String
    let helo: String?
    /// `mailfrom`, or `helo` for the null reverse-path.
    let identity: String
    let receiver: String
    /// The resolver's kept results, if it keeps any.
    let memo: SPFResultMemo?
    var function: String { self.identity == "helo" ? "spf.check (helo)" : "spf.check_host" }
    var argument: String { "\(self.ip) \(self.domain) <\(self.sender)>" }

    func makePlan() -> SPFCheck {
        SPFCheck(ip: self.ip, domain: self.domain, sender: self.sender, helo: self.helo, receiver: self.receiver,
                 memo: self.memo)
    }

    func summarize(_ output: SPFResult) -> String {
        "\(output.result.rawValue)\(output.mechanism.map { " (\($0))" } ?? "")"
    }

    /// A result reused from an earlier check says so: the trace shows no query for it.
    func summarize(_ output: SPFResult, of plan: SPFCheck) -> String {
        plan.tookKeptResult ? "\(self.summarize(output)), reused from an earlier check" : self.summarize(output)
    }

    func push(_ output: SPFResult, host: RuleHost, thread: LuaThreadHandle) -> Result<Int32, DNSError> {
        host.pushSPFResult(output, of: self, thread: thread)
        return .success(1)
    }

    func report(_ output: SPFResult, of plan: SPFCheck, to host: RuleHost) {
        host.spfObserver?(output.result, plan.tookKeptResult)
    }
}

/// `dns.query(name, type)` → `{ records..., chain =, secure = }, outcome`
struct RecordQueryCall: DNSFunctionCall {
    let name: String
    let type: DNSRecordType
    var function: String { "dns.query" }
    var argument: String { "\(self.name) \(self.type)" }
    func makePlan() -> RecordQuery { RecordQuery(name: self.name, type: self.type) }

    func summarize(_ output: DNSQueryResult) -> String {
        output.summary { "\($0.outcome.rawValue) \($0.records.count) records" }
    }

    func push(_ output: DNSQueryResult, host: RuleHost, thread: LuaThreadHandle) -> Result<Int32, DNSError> {
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
    }
}

extension RuleHost {
    /// `{ items..., secure = }, outcome`: what `dns.lookup` and `dns.rlookup` return.
    func pushList(_ items: [String], secure: Bool, outcome: DNSOutcome, thread: LuaThreadHandle) -> Int32 {
        self.lua.pushStringArray(items, fieldCount: 1, thread)
        self.setSecure(secure, thread: thread)
        self.lua.pushString(outcome.rawValue, thread)
        return 2
    }
}

extension Result where Failure == DNSError {
    /// A trace summary: the success described, or the error's kind.
    func summary(_ describe: (Success) -> String) -> String {
        switch self {
        case .success(let value): return describe(value)
        case .failure(let error): return "error \(error.kind.rawValue)"
        }
    }
}
