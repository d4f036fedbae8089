import DNS
import Foundation
import Lua
import OperatorFiles
import Policy
import Rules
import Spelling

/// Reads a test file: a Lua chunk that returns a table of declarations. It runs with an
/// empty environment under an instruction budget; only the data it returns is used.
public struct RuleTestFileLoader {
    /// The rule script used when a test file names none.
    public var defaultRulesPath: String

    public init(defaultRulesPath: String) {
        self.defaultRulesPath = defaultRulesPath
    }

    public func load(path: String) throws(RuleTestFileError) -> RuleTestFile {
        func fail(_ message: String) -> RuleTestFileError { RuleTestFileError(path: path, message: message) }
        let source: String
        do {
            source = try ScriptFile.source(atPath: path)
        } catch {
            throw fail("cannot read test file: \(error.reason)")
        }
        let lua = LuaState(memoryLimit: 64 << 20)
        if case .failure(let error) = lua.load(source: source, chunkName: "@" + path) {
            throw RuleTestFileError(path: path, message: error.message)
        }
        lua.newTable()
        lua.setUpvalue(function: -2, 1)
        let ran = lua.withMainBudget(instructions: 10_000_000, seconds: 5) {
            lua.protectedCall(arguments: 0, results: 1)
        }
        if case .failure(let error) = ran { throw RuleTestFileError(path: path, message: error.message) }
        let (data, complete) = LuaData.readCounting(lua, at: -1)
        lua.pop()
        guard complete else {
            throw RuleTestFileError(path: path, message: "the test file declares more than \(LuaData.valueLimit) values")
        }
        return try self.interpret(data, path: path)
    }

    private func interpret(_ data: LuaData, path: String) throws(RuleTestFileError) -> RuleTestFile {
        func fail(_ message: String) -> RuleTestFileError { RuleTestFileError(path: path, message: message) }
        guard case .table(_, let fields) = data else { throw fail("a test file must return a table, got \(data.typeName)") }
        let known: Set<String> = ["rules", "zone", "zone_file", "faults", "delay", "tests", "dns", "dry_run"]
        for key in fields.keys where !known.contains(key) {
            throw fail("unknown key '\(key)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        let directory = (path as NSString).deletingLastPathComponent
        func relative(_ file: String) -> String {
            file.hasPrefix("/") || directory.isEmpty ? file : directory + "/" + file
        }
        let rulesPath = try self.string(fields["rules"], "rules", path).map(relative) ?? self.defaultRulesPath
        let baseRecords = try self.zoneContents(fields, path: path, relative: relative)
        let baseFaults = try self.faults(fields["faults"], path: path, context: "faults")
        let baseDelay = try self.duration(fields["delay"], path: path, context: "delay") ?? .zero
        let baseNetwork = try self.dnsSource(fields["dns"], path: path, context: "dns") ?? false
        let baseDryRun = try self.flag(fields["dry_run"], path: path, context: "dry_run") ?? false

        guard case .table(let tests, _)? = fields["tests"], !tests.isEmpty else {
            throw fail("'tests' must be a non-empty list of tests")
        }
        var cases: [RuleTestCase] = []
        for (index, test) in tests.enumerated() {
            cases.append(try self.testCase(test, index: index + 1, path: path, baseRecords: baseRecords,
                                           baseFaults: baseFaults, baseDelay: baseDelay, baseNetwork: baseNetwork,
                                           baseDryRun: baseDryRun, relative: relative))
        }
        let names = cases.map(\.name)
        if let duplicate = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw fail("two tests are named '\(duplicate)'")
        }
        return RuleTestFile(path: path, rulesPath: rulesPath, cases: cases)
    }

    private static let testKeys: Set<String> = [
        "name", "client_ip", "client_port", "client_name", "server_ip", "server_port", "server_name", "helo", "mail_from", "rcpt",
        "auth", "tls", "zone", "zone_file", "faults", "delay", "expect", "vars", "logs", "headers", "dns", "dnssec",
        "dry_run", "request", "requests",
    ]

    private func testCase(_ data: LuaData, index: Int, path: String, baseRecords: ZoneContents,
                          baseFaults: [(String, ZoneFault)], baseDelay: Duration, baseNetwork: Bool,
                          baseDryRun: Bool, relative: (String) -> String) throws(RuleTestFileError) -> RuleTestCase {
        guard case .table(_, let fields) = data else {
            throw RuleTestFileError(path: path, message: "test #\(index) must be a table, got \(data.typeName)")
        }
        let name = try self.string(fields["name"], "name", path) ?? "test #\(index)"
        func fail(_ message: String) -> RuleTestFileError { RuleTestFileError(path: path, message: "test '\(name)': \(message)") }
        var records = baseRecords
        if fields["zone"] != nil || fields["zone_file"] != nil {
            records = try self.zoneContents(fields, path: path, relative: relative)
        }
        let faults = baseFaults + (try self.faults(fields["faults"], path: path, context: "test '\(name)': faults"))
        let delay = try self.duration(fields["delay"], path: path, context: "test '\(name)': delay") ?? baseDelay
        let usesNetwork = try self.dnsSource(fields["dns"], path: path, context: "test '\(name)': dns") ?? baseNetwork
        if usesNetwork && (!faults.isEmpty || delay != .zero) {
            throw fail("faults and delay apply to zone fixtures; a test with dns = \"network\" cannot inject them")
        }
        let dryRun = try self.flag(fields["dry_run"], path: path, context: "test '\(name)': dry_run") ?? baseDryRun
        if fields["requests"] != nil {
            for key in fields.keys.sorted() where !Self.requestsTestKeys.contains(key) {
                guard Self.testKeys.contains(key) else { throw fail("unknown key '\(key)'\(Spelling.hint(for: key, in: Self.requestsTestKeys))") }
                if key == "vars" {
                    throw fail("'vars' goes in a request of a test of requests: the ctx.vars its transaction holds after that answer")
                }
                throw fail("'\(key)' belongs to a session test; a test of requests gives what Postfix sends in each request's attributes, and the answer it expects")
            }
            guard let logs = Self.strings(fields["logs"]) else { throw fail("logs must be a string or a list of strings") }
            var testCase = RuleTestCase(name: name, session: SimulatedSession(base: SessionInfo(clientIP: "192.0.2.1"), recipients: [],
                                                                                 dryRun: dryRun),
                                        records: records.records, faults: faults, delay: delay, expectations: [], vars: [:], logs: logs,
                                        usesNetwork: usesNetwork)
            testCase.security = records.security
            testCase.requests = try self.expectedAnswers(shared: fields["request"], requests: fields["requests"], path: path, fail: fail)
            return testCase
        }
        for key in fields.keys where !Self.testKeys.contains(key) {
            let hint = Spelling.hint(for: key, in: Self.testKeys)
            throw fail("unknown key '\(key)'\(hint)")
        }
        if fields["request"] != nil { throw fail("'request' gives the attributes a test's requests share: it goes with 'requests'") }
        let clientIP = try self.string(fields["client_ip"], "client_ip", path) ?? "192.0.2.1"
        // "unknown": what Postfix sends when it has no address for the client.
        guard IPAddress(clientIP) != nil || clientIP == "unknown" else {
            throw fail("client_ip '\(clientIP)' is not an IP address (nor \"unknown\")")
        }
        var info = SessionInfo(clientIP: clientIP)
        func port(_ key: String) throws(RuleTestFileError) -> Int? {
            switch fields[key] {
            case .number(let port)? where port.rounded() == port && (0...65535).contains(port): return Int(port)
            case nil: return nil
            case .number(let port)?: throw fail("\(key) must be a port number (0 to 65535), got \(port)")
            case let other?: throw fail("\(key) must be a port number (0 to 65535), got \(other.typeName)")
            }
        }
        info.clientPort = try port("client_port")
        info.serverPort = try port("server_port")
        info.clientName = try self.string(fields["client_name"], "client_name", path)
        info.serverIP = try self.string(fields["server_ip"], "server_ip", path)
        if let serverIP = info.serverIP, IPAddress(serverIP) == nil {
            throw fail("server_ip '\(serverIP)' is not an IP address")
        }
        info.serverName = try self.string(fields["server_name"], "server_name", path) ?? "mx.vrules.test"
        info.helo = try self.string(fields["helo"], "helo", path)
        info.mailFrom = try self.string(fields["mail_from"], "mail_from", path).map(MailAddress.init)
        var recipients: [MailAddress] = []
        switch fields["rcpt"] {
        case .string(let one)?: recipients = [MailAddress(one)]
        case .table(let list, _)?:
            for item in list {
                guard case .string(let address) = item else { throw fail("rcpt must list strings") }
                recipients.append(MailAddress(address))
            }
        case nil: break
        case let other?: throw fail("rcpt must be a string or a list of strings, got \(other.typeName)")
        }
        switch fields["auth"] {
        case .string(let text)?:
            guard let (mechanism, username) = SessionInfo.authentication(text) else {
                throw fail("auth must be \"MECHANISM:user\" with both given, got \"\(text)\"")
            }
            info.authMechanism = mechanism
            info.authUsername = username
        case .table(_, let auth)?:
            guard let mechanism = try self.string(auth["mechanism"], "auth.mechanism", path), !mechanism.isEmpty,
                  let username = try self.string(auth["username"], "auth.username", path), !username.isEmpty else {
                throw fail("auth must be \"MECHANISM:user\" or { mechanism = ..., username = ... }, both given")
            }
            info.authMechanism = mechanism
            info.authUsername = username
        case nil: break
        case let other?: throw fail("auth must be \"MECHANISM:user\" or { mechanism, username }, got \(other.typeName)")
        }
        switch fields["tls"] {
        case .boolean(let tls)?: if tls { info.tls = SessionInfo.TLSInfo(version: "TLSv1.3") }
        case nil: break
        case let other?: throw fail("tls must be true or false, got \(other.typeName)")
        }

        var expectations: [(Stage, [StageExpectation])] = []
        guard case .table(_, let expect)? = fields["expect"], !expect.isEmpty else {
            throw fail("'expect' must be a table of stage = verdict, e.g. { connect = \"accept\" }")
        }
        for stage in Stage.allCases {
            guard let value = expect[stage.rawValue] else { continue }
            var list: [StageExpectation] = []
            let items: [LuaData]
            if case .table(let array, let fields) = value {
                guard !array.isEmpty, fields.isEmpty else {
                    throw fail("expect.\(stage.rawValue): a verdict or a list of verdicts, one per recipient")
                }
                items = array
            } else {
                items = [value]
            }
            for item in items {
                guard case .string(let text) = item, let expectation = StageExpectation(text) else {
                    throw fail("expect.\(stage.rawValue): expected \"accept\", \"next\", \"defer\", \"reject\", \"not run\" or a reply like \"550 5.7.25\"")
                }
                list.append(expectation)
            }
            expectations.append((stage, list))
        }
        for key in expect.keys where Stage(rawValue: key) == nil {
            let hint = Spelling.hint(for: key, in: Stage.allCases.map(\.rawValue))
            throw fail("expect: unknown stage '\(key)'\(hint)")
        }
        let vars = try self.expectedVars(fields["vars"], path: path, context: "test '\(name)': vars") ?? [:]
        // A single string is a list of one; anything else is an error, so an expectation
        // written the wrong way fails to load instead of passing without being checked.
        guard let logs = Self.strings(fields["logs"]) else { throw fail("logs must be a string or a list of strings") }
        guard let headers = Self.strings(fields["headers"]) else {
            throw fail("headers must be a string or a list of strings (\"Name: value\" or a part of one)")
        }
        let dnssec = try self.dnssecExpectations(fields["dnssec"], path: path, context: "test '\(name)': dnssec")
        var testCase = RuleTestCase(name: name, session: SimulatedSession(base: info, recipients: recipients, dryRun: dryRun),
                                    records: records.records,
                                    faults: faults, delay: delay, expectations: expectations, vars: vars, logs: logs,
                                    usesNetwork: usesNetwork)
        testCase.headers = headers
        testCase.security = records.security
        testCase.dnssec = dnssec
        return testCase
    }

    /// The keys of a test of `requests`: its DNS, the dry run, the attributes its requests
    /// share (`request`), the requests, and the lines the rules must log.
    private static let requestsTestKeys: Set<String> = ["name", "zone", "zone_file", "faults", "delay", "dns", "dry_run",
                                                        "request", "requests", "logs"]

    /// `requests = { { protocol_state = "RCPT", recipient = "...", answer = "DUNNO" }, ... }`,
    /// each request's attributes over those of `request` (`request=smtpd_access_policy` and
    /// `server_name=mx.vrules.test` when neither names them), each with the answer it must get.
    private func expectedAnswers(shared: LuaData?, requests: LuaData?, path: String,
                                 fail: (String) -> RuleTestFileError) throws(RuleTestFileError) -> [ExpectedAnswer] {
        func attributes(_ fields: [String: LuaData], _ context: String, skipping: Set<String> = []) throws(RuleTestFileError) -> [String: String] {
            var attributes: [String: String] = [:]
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) where !skipping.contains(key) {
                guard PolicyRequest.attributeNames.contains(key) else {
                    throw fail("\(context): '\(key)' is not an attribute of Postfix's policy protocol\(Spelling.hint(for: key, in: PolicyRequest.attributeNames))")
                }
                switch value {
                case .string(let text): attributes[key] = text
                case .number(let number) where number.rounded() == number && abs(number) < 1e15: attributes[key] = String(Int(number))
                default: throw fail("\(context).\(key): expected a string or a whole number, got \(value.typeName)")
                }
                if attributes[key]!.utf8.contains(where: { $0 == 0x0A || $0 == 0x00 }) {
                    throw fail("\(context).\(key): a value is one line (no newline or NUL)")
                }
            }
            return attributes
        }
        // The server's name as a session test's `server_name` defaults to, not this machine's
        // host name (what `vrules serve` uses when Postfix sends none): a header's authserv-id
        // in an expected answer must not depend on where the test runs.
        var base = ["request": "smtpd_access_policy", "server_name": "mx.vrules.test"]
        switch shared {
        case nil: break
        case .table(let list, let fields)? where list.isEmpty: base.merge(try attributes(fields, "request")) { $1 }
        case let other?: throw fail("'request' must be a table of attribute = value, got \(other.typeName)")
        }
        guard case .table(let list, let keyed)? = requests, !list.isEmpty, keyed.isEmpty else {
            throw fail("'requests' must be a non-empty list of requests, each a table of attributes with the answer it must get")
        }
        var answers: [ExpectedAnswer] = []
        for (index, item) in list.enumerated() {
            let context = "requests[\(index + 1)]"
            guard case .table(let array, let fields) = item, array.isEmpty else {
                throw fail("\(context) must be a table of attribute = value with its answer, got \(item.typeName)")
            }
            guard case .string(let answer)? = fields["answer"], !answer.isEmpty else {
                throw fail("\(context): 'answer' must be the action expected, as `vrules answer` prints it (\"DUNNO\", \"550 5.7.25 ...\", \"PREPEND Name: value\")")
            }
            let vars: [String: String]?
            do { vars = try self.expectedVars(fields["vars"], path: path, context: "\(context).vars") } catch { throw fail(error.message) }
            answers.append(ExpectedAnswer(attributes: base.merging(try attributes(fields, context, skipping: ["answer", "vars"])) { $1 },
                                          answer: answer, vars: vars))
        }
        return answers
    }

    /// `vars = { key = value }`: the values `ctx.vars` must hold, as text (numbers and
    /// booleans as Lua prints them); nil when absent.
    private func expectedVars(_ value: LuaData?, path: String, context: String) throws(RuleTestFileError) -> [String: String]? {
        guard let expected = try self.keyedTable(value, path: path, context: context, shape: "key = value") else { return nil }
        var vars: [String: String] = [:]
        for (key, value) in expected {
            switch value {
            case .string(let text): vars[key] = text
            case .boolean(let flag): vars[key] = flag ? "true" : "false"
            case .number(let number):
                vars[key] = number.rounded() == number && abs(number) < 1e15 ? String(Int(number)) : String(number)
            default: throw RuleTestFileError(path: path, message: "\(context).\(key): expected a string, number or boolean")
            }
        }
        return vars
    }

    /// `true` or `false`, or nil when absent.
    private func flag(_ value: LuaData?, path: String, context: String) throws(RuleTestFileError) -> Bool? {
        switch value {
        case .boolean(let flag)?: return flag
        case nil: return nil
        case let other?: throw RuleTestFileError(path: path, message: "\(context) must be true or false, got \(other.typeName)")
        }
    }

    /// `dns = "zone"` (the default: the fixtures) or `"network"` (the configured resolver).
    private func dnsSource(_ value: LuaData?, path: String, context: String) throws(RuleTestFileError) -> Bool? {
        switch value {
        case nil: return nil
        case .string("zone")?: return false
        case .string("network")?: return true
        default: throw RuleTestFileError(path: path, message: "\(context): expected \"zone\" or \"network\"")
        }
    }

    private func string(_ value: LuaData?, _ key: String, _ path: String) throws(RuleTestFileError) -> String? {
        switch value {
        case nil: return nil
        case .string(let text)?: return text
        case let other?: throw RuleTestFileError(path: path, message: "'\(key)' must be a string, got \(other.typeName)")
        }
    }

    /// `dnssec = { ["example.com/MX"] = "secure", ... }`: the DNSSEC status each question
    /// must have had (a question the session never asked is a failure too).
    private func dnssecExpectations(_ value: LuaData?, path: String, context: String) throws(RuleTestFileError) -> [(String, DNSSecurityStatus)] {
        guard let value else { return [] }
        let usage = "\(context) must be a table of [\"name/TYPE\"] = \"secure\" | \"insecure\" | \"bogus\" | \"indeterminate\""
        guard case .table(let array, let fields) = value, array.isEmpty else { throw RuleTestFileError(path: path, message: usage) }
        var expectations: [(String, DNSSecurityStatus)] = []
        for (key, expected) in fields.sorted(by: { $0.key < $1.key }) {
            guard let slash = key.lastIndex(of: "/"), let type = DNSRecordType(name: String(key[key.index(after: slash)...])),
                  let name = try? DNSName.normalize(String(key[..<slash])) else {
                throw RuleTestFileError(path: path, message: "\(context): '\(key)' is not a question (\"name/TYPE\", e.g. \"example.com/MX\")")
            }
            guard case .string(let text) = expected, let status = DNSSecurityStatus(rawValue: text) else {
                throw RuleTestFileError(path: path, message: "\(context)[\"\(key)\"]: expected \"secure\", \"insecure\", \"bogus\" or \"indeterminate\"")
            }
            expectations.append((DNSQuestion(name: name, type: type).description, status))
        }
        return expectations
    }

    private func zoneContents(_ fields: [String: LuaData], path: String, relative: (String) -> String) throws(RuleTestFileError) -> ZoneContents {
        var records = ZoneContents()
        do {
            if let file = try self.string(fields["zone_file"], "zone_file", path) {
                records.append(try ZoneFile.loadContents(path: relative(file)))
            }
            if let text = try self.string(fields["zone"], "zone", path) {
                records.append(try ZoneFile.parseContents(text, path: path + " (zone)"))
            }
        } catch let error as ZoneFileError {
            throw RuleTestFileError(path: path, message: "zone: \(error)")
        } catch let error as RuleTestFileError {
            throw error
        } catch {
            throw RuleTestFileError(path: path, message: "\(error)")
        }
        return records
    }

    /// The strings of a list (a single string is a list of one, an absent value an empty
    /// list); nil for anything else.
    private static func strings(_ value: LuaData?) -> [String]? {
        switch value {
        case nil: return []
        case .string(let text)?: return [text]
        case .table(let array, let fields)? where fields.isEmpty:
            var strings: [String] = []
            for item in array {
                guard case .string(let text) = item else { return nil }
                strings.append(text)
            }
            return strings
        default: return nil
        }
    }

    /// A table of `key = value` only: a list entry, or another type, is an error rather than
    /// something left unread.
    private func keyedTable(_ value: LuaData?, path: String, context: String, shape: String) throws(RuleTestFileError) -> [String: LuaData]? {
        switch value {
        case nil: return nil
        case .table(let array, let fields)? where array.isEmpty: return fields
        default: throw RuleTestFileError(path: path, message: "\(context) must be a table of \(shape)")
        }
    }

    private func faults(_ value: LuaData?, path: String, context: String) throws(RuleTestFileError) -> [(String, ZoneFault)] {
        guard let fields = try self.keyedTable(value, path: path, context: context, shape: "name = fault") else { return [] }
        var faults: [(String, ZoneFault)] = []
        for (name, fault) in fields.sorted(by: { $0.key < $1.key }) {
            guard let normalized = try? DNSName.normalize(name) else {
                throw RuleTestFileError(path: path, message: "\(context): invalid name '\(name)'")
            }
            switch fault {
            case .string("timeout"): faults.append((normalized, .timeout))
            case .string("servfail"): faults.append((normalized, .servfail))
            case .string("refused"): faults.append((normalized, .refused))
            case .table(_, let options):
                guard let delay = try self.duration(options["delay"], path: path, context: "\(context).\(name).delay") else {
                    throw RuleTestFileError(path: path, message: "\(context).\(name): expected { delay = \"200ms\" }")
                }
                faults.append((normalized, .delay(delay)))
            default:
                throw RuleTestFileError(path: path, message: "\(context).\(name): expected \"timeout\", \"servfail\", \"refused\" or { delay = \"200ms\" }")
            }
        }
        return faults
    }

    /// The longest delay a test may inject: far beyond any stage deadline.
    static let maximumDelaySeconds: Double = 3600

    private func duration(_ value: LuaData?, path: String, context: String) throws(RuleTestFileError) -> Duration? {
        func milliseconds(_ seconds: Double) throws(RuleTestFileError) -> Duration {
            guard seconds >= 0, seconds <= Self.maximumDelaySeconds else {
                throw RuleTestFileError(path: path, message: "\(context): a duration from 0 to 1 hour, got \(seconds) seconds")
            }
            return .milliseconds(Int64(seconds * 1000))
        }
        switch value {
        case nil: return nil
        case .number(let seconds)?: return try milliseconds(seconds)
        case .string(let text)?:
            let units: [(String, Double)] = [("ms", 0.001), ("s", 1)]
            for (suffix, scale) in units where text.hasSuffix(suffix) {
                if let number = Double(text.dropLast(suffix.count)) { return try milliseconds(number * scale) }
            }
            throw RuleTestFileError(path: path, message: "\(context): invalid duration '\(text)' (e.g. \"200ms\", \"1s\")")
        default:
            throw RuleTestFileError(path: path, message: "\(context): expected a duration like \"200ms\"")
        }
    }
}
