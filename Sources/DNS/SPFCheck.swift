#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// RFC 7208 §4 check_host(): whether `ip` may send mail for `domain`, written as a
/// `DNSLookupPlan` so that the zone-file resolver and the network resolver share it and a
/// Lua coroutine can yield while it waits.
///
/// Evaluation keeps a stack of records: the checked domain's at the bottom, one more per
/// `include:` being evaluated (`redirect=` replaces the record it ends). Every term is taken
/// in order; a term that needs DNS asks its questions and the plan resumes where it stopped.
///
/// Limits (§4.6.4), which also bound hostile records: at most 10 terms that query DNS
/// (`include`, `a`, `mx`, `ptr`, `exists`, `redirect`), at most 2 of them answered with
/// NXDOMAIN or no data, at most 10 MX hosts per `mx` (more is a permerror) and 10 PTR names
/// per `ptr` or `%{p}` (the rest ignored). A DNS failure is `temperror`; nothing throws.
///
/// Given an `SPFResultMemo`, a check starts by looking for a result kept for its IP and
/// domain, and ends by keeping its own when it is reusable (`reusableFor`).
public struct SPFCheck: DNSLookupPlan, Sendable {
    public typealias Output = SPFResult

    public static let maximumDNSTerms = 10
    public static let maximumVoidLookups = 2
    public static let maximumNamesPerLookup = 10
    /// Octets of an explanation expanded before it is sanitised and cut to
    /// `SPFExplanation.maximumLength`: room for characters the sanitiser removes.
    static let explanationExpansionLimit = 4096

    public let ip: IPAddress
    /// The domain as given.
    public let domain: String

    private var values: SPFMacroValues
    private var frames: [Frame] = []
    private var dnsTerms = 0
    private var voidLookups = 0
    private var waiting: Waiting = .idle
    /// Records already parsed in this check, by text: an include loop reads the same long
    /// record (too long for `SPFRecordCache`) up to 10 times, and is parsed once.
    private var parsedRecords: [String: SPFRecord] = [:]
    private let memo: SPFResultMemo?
    /// Whether the result depends only on the IP, the domain and the answers read so far.
    private var reusable = true
    /// The shortest TTL among the records read so far.
    private var shortestTTL = UInt32.max
    /// Once finished: for how many seconds the result may be given again for the same IP
    /// and domain (`SPFResultMemo`); nil when it may not (see the memo for when).
    public private(set) var reusableFor: UInt32?
    /// Whether the result was taken from the memo, without evaluating anything.
    public private(set) var tookKeptResult = false

    /// A record being evaluated, and where.
    private struct Frame: Sendable {
        var domain: String
        var record: SPFRecord
        var index: Int
    }

    private enum RecordPurpose: Sendable {
        case initial, include, redirect
    }

    /// What comes after the validated name of the IP (`%{p}`) is known.
    private enum AfterValidatedName: Sendable {
        case evaluate
        /// Look up the explanation of this result (its `exp=` domain needs `%{p}`).
        case explain(SPFResult)
        /// Expand this explanation text for this result.
        case expandExplanation(SPFResult, SPFMacroString)
    }

    private enum Waiting: Sendable {
        case idle
        case record(domain: String, purpose: RecordPurpose)
        case addresses(SPFCIDR)
        case mxHosts(SPFCIDR)
        case mxAddresses(SPFCIDR, hosts: Int)
        case ptrNames(target: String?, then: AfterValidatedName)
        case ptrAddresses(names: [String], target: String?, then: AfterValidatedName)
        case exists
        case explanation(SPFResult)
        case finished
    }

    /// check_host(ip, domain, sender) with the HELO name for `%{h}` and the receiving host
    /// for `%{r}`. An empty `sender` is the null reverse-path: the identity is then
    /// `postmaster@<domain>` (RFC 7208 §2.4), as it is for a sender without a local part.
    public init(ip: IPAddress, domain: String, sender: String, helo: String?, receiver: String = "unknown",
                memo: SPFResultMemo? = nil) {
        self.ip = ip.unmapped
        self.domain = domain
        self.memo = memo
        var localPart = "postmaster"
        var senderDomain = domain
        if let at = sender.utf8.lastIndex(of: UInt8(ascii: "@")) {
            if at != sender.startIndex { localPart = String(sender[..<at]) }
            senderDomain = String(sender[sender.utf8.index(after: at)...])
        } else if !sender.isEmpty {
            senderDomain = sender
        }
        self.values = SPFMacroValues(
            sender: "\(localPart)@\(senderDomain)", localPart: localPart, senderDomain: senderDomain,
            ip: ip.unmapped, helo: helo ?? "unknown", receiver: receiver, validatedNames: nil,
            timestamp: Int(time(nil)))
    }

    /// The identity SPF checks for an SMTP transaction (RFC 7208 §2.3–2.4): the MAIL FROM
    /// domain, or the HELO name when the reverse-path is null.
    public static func identity(mailFrom: String, helo: String?) -> (domain: String, sender: String) {
        if let at = mailFrom.lastIndex(of: "@") {
            return (String(mailFrom[mailFrom.index(after: at)...]), mailFrom)
        }
        if mailFrom.isEmpty {
            let helo = helo ?? ""
            return (helo, "postmaster@\(helo)")
        }
        return (mailFrom, mailFrom)
    }

    // MARK: DNSLookupPlan

    public mutating func start() -> DNSLookupStep<Output> {
        self.frames = []
        self.dnsTerms = 0
        self.voidLookups = 0
        self.reusable = true
        self.shortestTTL = .max
        self.reusableFor = nil
        self.tookKeptResult = false
        if let kept = self.memo?.result(ip: self.ip, domain: self.domain) {
            self.tookKeptResult = true
            self.waiting = .finished
            return .done(kept)
        }
        // §4.3: a malformed or single-label domain is "none" before any query.
        guard let name = Self.checkedDomain(self.domain) else {
            return self.finish(.none, reason: "'\(self.domain)' is not a valid multi-label domain name")
        }
        return self.askRecord(of: name, purpose: .initial)
    }

    public mutating func resume(with results: [DNSQueryResult]) -> DNSLookupStep<Output> {
        let waiting = self.waiting
        self.waiting = .idle
        for result in results { self.noteForReuse(result) }
        switch waiting {
        case .idle, .finished:
            preconditionFailure("SPFCheck resumed while not waiting for answers")
        case .record(let domain, let purpose):
            precondition(results.count == 1, "SPFCheck resumed with \(results.count) results for 1 question")
            return self.handleRecord(results[0], domain: domain, purpose: purpose)
        case .addresses(let cidr):
            precondition(results.count == 1, "SPFCheck resumed with \(results.count) results for 1 question")
            return self.handleAddresses(results[0], cidr: cidr)
        case .mxHosts(let cidr):
            precondition(results.count == 1, "SPFCheck resumed with \(results.count) results for 1 question")
            return self.handleMXHosts(results[0], cidr: cidr)
        case .mxAddresses(let cidr, let hosts):
            precondition(results.count == hosts, "SPFCheck resumed with \(results.count) results for \(hosts) questions")
            return self.handleMXAddresses(results, cidr: cidr)
        case .ptrNames(let target, let then):
            precondition(results.count == 1, "SPFCheck resumed with \(results.count) results for 1 question")
            return self.handlePTRNames(results[0], target: target, then: then)
        case .ptrAddresses(let names, let target, let then):
            precondition(results.count == names.count,
                         "SPFCheck resumed with \(results.count) results for \(names.count) questions")
            return self.handlePTRAddresses(results, names: names, target: target, then: then)
        case .exists:
            precondition(results.count == 1, "SPFCheck resumed with \(results.count) results for 1 question")
            return self.handleExists(results[0])
        case .explanation(let result):
            precondition(results.count == 1, "SPFCheck resumed with \(results.count) results for 1 question")
            return self.handleExplanation(results[0], result: result)
        }
    }

    // MARK: Evaluation

    /// Evaluates terms from the current position until one needs DNS or the result is known.
    private mutating func evaluate() -> DNSLookupStep<Output> {
        while true {
            let top = self.frames.count - 1
            let frame = self.frames[top]
            guard frame.index < frame.record.directives.count else {
                // §6.1: redirect= applies only when no mechanism matched (an `all` always does).
                guard let redirect = frame.record.redirect else {
                    if let step = self.conclude(.neutral, mechanism: nil) { return step }
                    continue
                }
                if redirect.needsValidatedName && self.values.validatedNames == nil {
                    return self.lookUpValidatedName(target: nil, then: .evaluate)
                }
                if let step = self.countDNSTerm("redirect=") { return step }
                guard let target = self.targetName(redirect, domain: frame.domain) else {
                    return self.finish(.permerror, reason: "redirect= names an invalid domain")
                }
                return self.askRecord(of: target, purpose: .redirect)
            }
            let directive = frame.record.directives[frame.index]
            switch directive.mechanism {
            case .all:
                if let step = self.conclude(directive.qualifier.result, mechanism: directive.text) { return step }
                continue
            case .ip(let network, let prefixLength):
                if self.ip.isIn(network: network, prefixLength: prefixLength) {
                    if let step = self.conclude(directive.qualifier.result, mechanism: directive.text) { return step }
                } else {
                    self.frames[top].index += 1
                }
                continue
            case .include, .a, .mx, .ptr, .exists:
                break
            }
            let spec = directive.mechanism.domainSpec
            if let spec, spec.needsValidatedName, self.values.validatedNames == nil {
                return self.lookUpValidatedName(target: nil, then: .evaluate)
            }
            if let step = self.countDNSTerm(directive.text) { return step }
            guard let target = self.targetName(spec, domain: frame.domain) else {
                // An expansion that is no valid name (an empty or overlong label) names
                // nothing: the mechanism does not match, and an include of it is a permerror.
                if case .include = directive.mechanism {
                    return self.finish(.permerror, reason: "'\(directive.text)' names an invalid domain")
                }
                self.frames[top].index += 1
                continue
            }
            switch directive.mechanism {
            case .include:
                return self.askRecord(of: target, purpose: .include)
            case .a(_, let cidr):
                self.waiting = .addresses(cidr)
                return .need([DNSQuestion(name: target, type: self.ip.addressRecordType)])
            case .mx(_, let cidr):
                self.waiting = .mxHosts(cidr)
                return .need([DNSQuestion(name: target, type: .mx)])
            case .ptr:
                return self.lookUpValidatedName(target: target, then: .evaluate)
            case .exists:
                self.waiting = .exists
                return .need([DNSQuestion(name: target, type: .a)])
            case .all, .ip:
                preconditionFailure("handled above")
            }
        }
    }

    /// Counts a DNS-querying term; the permerror step when it is one too many.
    private mutating func countDNSTerm(_ text: String) -> DNSLookupStep<Output>? {
        self.dnsTerms += 1
        guard self.dnsTerms <= Self.maximumDNSTerms else {
            return self.finish(.permerror, reason: "more than \(Self.maximumDNSTerms) DNS-querying terms (at '\(text)')")
        }
        return nil
    }

    /// Counts a lookup that found nothing; the permerror step when it is one too many.
    private mutating func countVoidLookup() -> DNSLookupStep<Output>? {
        self.voidLookups += 1
        guard self.voidLookups <= Self.maximumVoidLookups else {
            return self.finish(.permerror, reason: "more than \(Self.maximumVoidLookups) void DNS lookups")
        }
        return nil
    }

    /// The current mechanism did not match: go on with the next term.
    private mutating func noMatch() -> DNSLookupStep<Output> {
        self.frames[self.frames.count - 1].index += 1
        return self.evaluate()
    }

    /// The current mechanism matched.
    private mutating func match() -> DNSLookupStep<Output> {
        let frame = self.frames[self.frames.count - 1]
        let directive = frame.record.directives[frame.index]
        if let step = self.conclude(directive.qualifier.result, mechanism: directive.text) { return step }
        return self.evaluate()
    }

    /// The record on top of the stack gave `result`. For an included record (§5.2), `pass`
    /// makes the `include` match and anything else lets the including record go on; the
    /// checked domain's record ends the check. Nil when evaluation goes on.
    private mutating func conclude(_ result: SPFResult.Kind, mechanism: String?) -> DNSLookupStep<Output>? {
        guard self.frames.count > 1 else {
            return self.finishWithExplanation(SPFResult(result: result, domain: self.domain, mechanism: mechanism))
        }
        self.frames.removeLast()
        let top = self.frames.count - 1
        let include = self.frames[top].record.directives[self.frames[top].index]
        if result == .pass {
            return self.conclude(include.qualifier.result, mechanism: include.text)
        }
        self.frames[top].index += 1
        return nil
    }

    // MARK: Records

    private mutating func askRecord(of domain: String, purpose: RecordPurpose) -> DNSLookupStep<Output> {
        self.waiting = .record(domain: domain, purpose: purpose)
        return .need([DNSQuestion(name: domain, type: .txt)])
    }

    private mutating func handleRecord(_ result: DNSQueryResult, domain: String, purpose: RecordPurpose) -> DNSLookupStep<Output> {
        let answer: DNSAnswer
        switch result {
        case .failure(let error):
            return self.finish(.temperror, reason: "looking up the SPF record of \(domain): \(error)")
        case .success(let success):
            answer = success
        }
        let texts = answer.outcome == .ok ? answer.records.compactMap(Self.text(of:)) : []
        let spfTexts = texts.filter(SPFRecord.isSPFRecord)
        if spfTexts.isEmpty {
            let reason = "no SPF record at \(domain)"
            switch purpose {
            case .initial: return self.finish(.none, reason: reason)
            case .include: return self.finish(.permerror, reason: "include: \(reason)")
            case .redirect: return self.finish(.permerror, reason: "redirect=: \(reason)")
            }
        }
        guard spfTexts.count == 1 else {
            return self.finish(.permerror, reason: "\(spfTexts.count) SPF records at \(domain)")
        }
        let text = spfTexts[0]
        let record: SPFRecord
        if let parsed = self.parsedRecords[text] {
            record = parsed
        } else {
            switch SPFRecordCache.shared.record(for: text) {
            case .success(let parsed):
                record = parsed
            case .failure(let error):
                return self.finish(.permerror, reason: "SPF record of \(domain): \(error.reason)")
            }
            // The shared cache keeps the short ones.
            if !SPFRecordCache.isKept(text) { self.parsedRecords[text] = record }
        }
        if record.usesMacros { self.reusable = false }
        let frame = Frame(domain: domain, record: record, index: 0)
        switch purpose {
        case .initial, .include:
            self.frames.append(frame)
        case .redirect:
            self.frames[self.frames.count - 1] = frame
        }
        return self.evaluate()
    }

    /// A TXT record's character-strings joined (RFC 7208 §3.3); nil for another type. Octets
    /// that are not UTF-8 become U+FFFD, which no record or explanation may contain: a
    /// `v=spf1` record holding them is a permerror rather than invisible.
    private static func text(of record: DNSRecord) -> String? {
        guard case .txt(let strings) = record.data else { return nil }
        if strings.count == 1 { return String(decoding: strings[0], as: UTF8.self) }
        var octets: [UInt8] = []
        octets.reserveCapacity(strings.reduce(0) { $0 + $1.count })
        for string in strings { octets += string }
        return String(decoding: octets, as: UTF8.self)
    }

    // MARK: Mechanisms

    /// `a` (§5.3).
    private mutating func handleAddresses(_ result: DNSQueryResult, cidr: SPFCIDR) -> DNSLookupStep<Output> {
        switch result {
        case .failure(let error):
            return self.finish(.temperror, reason: "\(error)")
        case .success(let answer):
            let addresses = answer.addresses
            if addresses.isEmpty, let step = self.countVoidLookup() { return step }
            let prefixLength = cidr.prefixLength(for: self.ip)
            if addresses.contains(where: { self.ip.isIn(network: $0, prefixLength: prefixLength) }) {
                return self.match()
            }
            return self.noMatch()
        }
    }

    /// `mx` (§5.4): the MX hosts, then all their addresses at once.
    private mutating func handleMXHosts(_ result: DNSQueryResult, cidr: SPFCIDR) -> DNSLookupStep<Output> {
        let answer: DNSAnswer
        switch result {
        case .failure(let error):
            return self.finish(.temperror, reason: "\(error)")
        case .success(let success):
            answer = success
        }
        var hosts: [String] = []
        for record in answer.records {
            guard case .mx(_, let exchange) = record.data else { continue }
            hosts.append(exchange)
        }
        if hosts.isEmpty {
            if let step = self.countVoidLookup() { return step }
            return self.noMatch()
        }
        guard hosts.count <= Self.maximumNamesPerLookup else {
            return self.finish(.permerror, reason: "\(hosts.count) MX hosts for one mx mechanism (at most \(Self.maximumNamesPerLookup))")
        }
        // The root (a Null MX, RFC 7505) has no address to compare.
        let names = hosts.filter { !$0.isEmpty }
        if names.isEmpty { return self.noMatch() }
        self.waiting = .mxAddresses(cidr, hosts: names.count)
        return .need(names.map { DNSQuestion(name: $0, type: self.ip.addressRecordType) })
    }

    private mutating func handleMXAddresses(_ results: [DNSQueryResult], cidr: SPFCIDR) -> DNSLookupStep<Output> {
        let prefixLength = cidr.prefixLength(for: self.ip)
        for result in results {
            switch result {
            case .failure(let error):
                return self.finish(.temperror, reason: "\(error)")
            case .success(let answer):
                if answer.addresses.contains(where: { self.ip.isIn(network: $0, prefixLength: prefixLength) }) {
                    return self.match()
                }
            }
        }
        return self.noMatch()
    }

    /// `exists` (§5.7): any A record, whatever the client's family.
    private mutating func handleExists(_ result: DNSQueryResult) -> DNSLookupStep<Output> {
        switch result {
        case .failure(let error):
            return self.finish(.temperror, reason: "\(error)")
        case .success(let answer):
            if !answer.addresses.isEmpty { return self.match() }
            if let step = self.countVoidLookup() { return step }
            return self.noMatch()
        }
    }

    // MARK: Validated names (ptr, %{p})

    /// Looks up the IP's names and confirms them (§5.5). `target` set: the `ptr` mechanism
    /// for that domain; nil: the `%{p}` value, then `then`.
    private mutating func lookUpValidatedName(target: String?, then: AfterValidatedName) -> DNSLookupStep<Output> {
        self.reusable = false
        self.waiting = .ptrNames(target: target, then: then)
        return .need([DNSQuestion(name: self.ip.reverseName, type: .ptr)])
    }

    private mutating func handlePTRNames(_ result: DNSQueryResult, target: String?, then: AfterValidatedName) -> DNSLookupStep<Output> {
        var names: [String] = []
        switch result {
        case .failure:
            // §5.5: a DNS error on the PTR lookup makes the mechanism not match.
            break
        case .success(let answer):
            for name in answer.ptrNames where !name.isEmpty && !names.contains(name) {
                names.append(name)
                if names.count == Self.maximumNamesPerLookup { break }
            }
            if names.isEmpty, target != nil, let step = self.countVoidLookup() { return step }
        }
        if names.isEmpty {
            return self.validated([], target: target, then: then)
        }
        self.waiting = .ptrAddresses(names: names, target: target, then: then)
        return .need(names.map { DNSQuestion(name: $0, type: self.ip.addressRecordType) })
    }

    private mutating func handlePTRAddresses(_ results: [DNSQueryResult], names: [String], target: String?,
                                             then: AfterValidatedName) -> DNSLookupStep<Output> {
        var validated: [String] = []
        for (name, result) in zip(names, results) {
            // §5.5: a name whose address lookup fails is skipped.
            if case .success(let answer) = result, answer.addresses.contains(self.ip) {
                validated.append(name)
            }
        }
        return self.validated(validated, target: target, then: then)
    }

    private mutating func validated(_ names: [String], target: String?, then: AfterValidatedName) -> DNSLookupStep<Output> {
        if let target {
            let matches = names.contains { $0 == target || $0.hasSuffix("." + target) }
            return matches ? self.match() : self.noMatch()
        }
        self.values.validatedNames = names
        switch then {
        case .evaluate:
            return self.evaluate()
        case .explain(let result):
            return self.finishWithExplanation(result)
        case .expandExplanation(var result, let text):
            result.explanation = self.expandedExplanation(text)
            return self.done(result)
        }
    }

    // MARK: Explanation

    /// A `fail` looks up the explanation of the record that decided it (§6.2: not an included
    /// record's, and after a redirect the target's); any problem with it is ignored.
    private mutating func finishWithExplanation(_ result: SPFResult) -> DNSLookupStep<Output> {
        guard result.result == .fail, let frame = self.frames.first, let exp = frame.record.explanation else {
            return self.done(result)
        }
        if exp.needsValidatedName && self.values.validatedNames == nil {
            return self.lookUpValidatedName(target: nil, then: .explain(result))
        }
        guard let name = self.targetName(exp, domain: frame.domain) else { return self.done(result) }
        self.reusable = false
        self.waiting = .explanation(result)
        return .need([DNSQuestion(name: name, type: .txt)])
    }

    /// §6.2: exactly one TXT record, a valid explain-string; otherwise no explanation.
    private mutating func handleExplanation(_ answer: DNSQueryResult, result: SPFResult) -> DNSLookupStep<Output> {
        guard case .success(let answer) = answer, answer.outcome == .ok else { return self.done(result) }
        let texts = answer.records.compactMap(Self.text(of:))
        guard texts.count == 1,
              let text = try? SPFMacroParser.parse(Substring(texts[0]), explanation: true) else {
            return self.done(result)
        }
        if text.needsValidatedName && self.values.validatedNames == nil {
            return self.lookUpValidatedName(target: nil, then: .expandExplanation(result, text))
        }
        var result = result
        result.explanation = self.expandedExplanation(text)
        return self.done(result)
    }

    private func expandedExplanation(_ text: SPFMacroString) -> String {
        let domain = self.frames.first?.domain ?? self.domain
        return SPFExplanation.sanitised(text.expand(with: self.values, domain: domain,
                                                    prefixLimit: Self.explanationExpansionLimit))
    }

    // MARK: Names

    /// The domain a term targets: its domain-spec expanded, or the current domain. Longer
    /// than 253 characters, labels are removed from the left (§7.3). Nil when not a name
    /// DNS can be asked about.
    private func targetName(_ spec: SPFMacroString?, domain: String) -> String? {
        guard let spec else { return domain }
        // Two octets more than a name may have: a trailing dot, and one before the name
        // to tell whether the cut fell on a label's start.
        var (name, cut) = spec.expandSuffix(with: self.values, domain: domain, limit: DNSName.maximumLength + 2)
        if cut {
            // The first label seen is partial, or complete but too long with what follows:
            // it goes either way.
            guard let dot = name.utf8.firstIndex(of: UInt8(ascii: ".")) else { return nil }
            name = name[name.utf8.index(after: dot)...]
        }
        if name.utf8.last == UInt8(ascii: ".") { name = name[..<name.utf8.index(before: name.endIndex)] }
        while name.utf8.count > DNSName.maximumLength, let dot = name.utf8.firstIndex(of: UInt8(ascii: ".")) {
            name = name[name.utf8.index(after: dot)...]
        }
        // A backslash is an escape in presentation form ("\\046" is a dot inside a label) for
        // the network resolver's encoder but a plain octet for the zone resolver: a name
        // expanded with one, from a hostile sender, is no name, so both resolvers agree.
        guard !name.isEmpty, !name.utf8.contains(UInt8(ascii: "\\")) else { return nil }
        if let normalized = try? DNSName.normalize(String(name)) {
            return normalized.isEmpty ? nil : normalized
        }
        return Self.nameWithSpaces(name)
    }

    /// `%_` expands to a space (§7.3), which DNS carries in a label like any other octet but
    /// `DNSName.normalize` refuses: such a name is accepted when it is otherwise valid.
    private static func nameWithSpaces(_ name: Substring) -> String? {
        guard name.utf8.count <= DNSName.maximumLength,
              name.utf8.allSatisfy({ $0 >= 0x20 && $0 <= 0x7e }) else { return nil }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.allSatisfy({ !$0.isEmpty && $0.utf8.count <= DNSName.maximumLabelLength }) else { return nil }
        return name.lowercased()
    }

    /// The checked domain, normalised, when it is a valid multi-label name (§4.3).
    private static func checkedDomain(_ domain: String) -> String? {
        // Longer than any name's Unicode form can be: refused before the IDNA conversion.
        guard domain.utf8.count <= 4 * DNSName.maximumLength,
              let name = try? DNSName.normalize(domain), name.contains(".") else { return nil }
        // An IP literal ("[192.0.2.1]" or a bare address as HELO) is not a domain.
        if name.hasPrefix("[") || (Self.mayBeAddress(name) && IPAddress(name) != nil) { return nil }
        return name
    }

    /// Whether `name` could be an address `inet_pton` reads: IPv4 is digits and dots, IPv6
    /// has a colon. Parsing every checked domain as an address showed in profiles.
    private static func mayBeAddress(_ name: String) -> Bool {
        name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") } || name.utf8.contains(UInt8(ascii: ":"))
    }

    // MARK: Results

    private mutating func finish(_ result: SPFResult.Kind, reason: String) -> DNSLookupStep<Output> {
        self.done(SPFResult(result: result, domain: self.domain, reason: reason))
    }

    private mutating func done(_ result: SPFResult) -> DNSLookupStep<Output> {
        self.waiting = .finished
        switch result.result {
        case .pass, .fail, .softfail, .neutral, .none:
            // A second less: a cached answer's TTL is counted down in whole seconds.
            if self.reusable, self.shortestTTL != .max, self.shortestTTL > 1 { self.reusableFor = self.shortestTTL - 1 }
        case .permerror, .temperror:
            break
        }
        if let memo = self.memo, let seconds = self.reusableFor {
            memo.store(result, ip: self.ip, domain: self.domain, seconds: seconds)
        }
        return .done(result)
    }

    /// Folds one answer into `reusable` and `shortestTTL`.
    private mutating func noteForReuse(_ result: DNSQueryResult) {
        guard case .success(let answer) = result, answer.outcome == .ok, !answer.records.isEmpty else {
            self.reusable = false
            return
        }
        for record in answer.records where record.ttl < self.shortestTTL { self.shortestTTL = record.ttl }
        for record in answer.chain where record.ttl < self.shortestTTL { self.shortestTTL = record.ttl }
    }
}
