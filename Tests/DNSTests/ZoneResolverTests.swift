import Testing

@testable import DNS

@Suite("Zone resolver")
struct ZoneResolverTests {
    static let zone = """
        $ORIGIN example.com.
        @           MX    10 mail
        mail        A     192.0.2.25
        mail        AAAA  2001:db8::25
        txtonly     TXT   "hello"
        a.b.deep    A     192.0.2.40
        alias       CNAME alias2
        alias2      CNAME mail
        dangling    CNAME nowhere
        toempty     CNAME txtonly
        loop1       CNAME loop2
        loop2       CNAME loop1
        self        CNAME self
        *.wild      MX    5 mail
        www.wild    A     192.0.2.80
        """

    let resolver: ZoneResolver

    init() throws {
        self.resolver = try makeResolver(Self.zone)
    }

    func query(_ name: String, _ type: DNSRecordType) -> DNSQueryResult? {
        self.resolver.immediateResult(for: DNSQuestion(name: name, type: type))
    }

    @Test func answersRecordsOfTheAskedType() throws {
        let answer = try #require(expectAnswer(self.query("mail.example.com", .a)))
        #expect(answer.outcome == .ok)
        #expect(answer.name == "mail.example.com")
        #expect(answer.type == .a)
        #expect(answer.records == [DNSRecord(name: "mail.example.com", ttl: 3600, data: .a(ip("192.0.2.25")))])
        #expect(answer.chain.isEmpty)
        #expect(answer.server == "zone")
        #expect(answer.secure == false)
    }

    @Test func nxdomainWhenTheNameDoesNotExist() throws {
        let answer = try #require(expectAnswer(self.query("missing.example.com", .a)))
        #expect(answer.outcome == .nxdomain)
        #expect(answer.records.isEmpty)
        let outside = try #require(expectAnswer(self.query("example.org", .mx)))
        #expect(outside.outcome == .nxdomain)
    }

    @Test func nodataWhenTheNameHasOtherTypes() throws {
        let answer = try #require(expectAnswer(self.query("txtonly.example.com", .a)))
        #expect(answer.outcome == .nodata)
        #expect(answer.records.isEmpty)
    }

    @Test(arguments: ["b.deep.example.com", "deep.example.com", "com"])
    func emptyNonTerminalsAreNodata(_ name: String) throws {
        let answer = try #require(expectAnswer(self.query(name, .a)))
        #expect(answer.outcome == .nodata)
        let below = try #require(expectAnswer(self.query("c.b.deep.example.com", .a)))
        #expect(below.outcome == .nxdomain)
    }

    @Test func followsACNAMEChain() throws {
        let answer = try #require(expectAnswer(self.query("alias.example.com", .aaaa)))
        #expect(answer.outcome == .ok)
        #expect(answer.name == "alias.example.com")
        #expect(answer.chain == [
            DNSRecord(name: "alias.example.com", ttl: 3600, data: .cname("alias2.example.com")),
            DNSRecord(name: "alias2.example.com", ttl: 3600, data: .cname("mail.example.com")),
        ])
        #expect(answer.records == [DNSRecord(name: "mail.example.com", ttl: 3600, data: .aaaa(ip("2001:db8::25")))])
    }

    @Test func aCNAMEQuestionGetsTheCNAMEItself() throws {
        let answer = try #require(expectAnswer(self.query("alias.example.com", .cname)))
        #expect(answer.outcome == .ok)
        #expect(answer.chain.isEmpty)
        #expect(answer.records.map(\.data) == [.cname("alias2.example.com")])
    }

    @Test func theOutcomeIsTheEndOfTheChains() throws {
        let dangling = try #require(expectAnswer(self.query("dangling.example.com", .a)))
        #expect(dangling.outcome == .nxdomain)
        #expect(dangling.chain.map(\.data) == [.cname("nowhere.example.com")])
        let toEmpty = try #require(expectAnswer(self.query("toempty.example.com", .a)))
        #expect(toEmpty.outcome == .nodata)
        #expect(toEmpty.chain.count == 1)
    }

    @Test(arguments: ["loop1.example.com", "self.example.com"])
    func aCNAMELoopIsServfail(_ name: String) throws {
        let error = try #require(expectFailure(self.query(name, .a)))
        #expect(error.kind == .servfail)
        #expect(error.name == name)
        #expect(error.type == .a)
        #expect(error.detail?.hasPrefix("CNAME loop: \(name) -> ") == true)
    }

    /// `c0 -> c1 -> ... -> cN`, where cN has an A record.
    func chainResolver(length: Int) -> ZoneResolver {
        var records: [DNSRecord] = []
        for index in 0..<length {
            records.append(DNSRecord(name: "c\(index).example", ttl: 60, data: .cname("c\(index + 1).example")))
        }
        records.append(DNSRecord(name: "c\(length).example", ttl: 60, data: .a(ip("192.0.2.1"))))
        return ZoneResolver(records: records)
    }

    @Test func chainsOfEightAreFollowedNineAreNot() throws {
        let eight = try #require(expectAnswer(self.chainResolver(length: 8).immediateResult(for: DNSQuestion(name: "c0.example", type: .a))))
        #expect(eight.outcome == .ok)
        #expect(eight.chain.count == 8)
        let nine = try #require(expectFailure(self.chainResolver(length: 9).immediateResult(for: DNSQuestion(name: "c0.example", type: .a))))
        #expect(nine.kind == .servfail)
        #expect(nine.detail == "CNAME chain longer than 8")
    }

    @Test func wildcardsAnswerForNamesThatDoNotExist() throws {
        let synthesized = try #require(expectAnswer(self.query("anything.wild.example.com", .mx)))
        #expect(synthesized.outcome == .ok)
        #expect(synthesized.records == [
            DNSRecord(name: "anything.wild.example.com", ttl: 3600, data: .mx(preference: 5, exchange: "mail.example.com")),
        ])
        let deeper = try #require(expectAnswer(self.query("x.y.wild.example.com", .a)))
        #expect(deeper.outcome == .nodata)
        // A name that exists is never covered by the wildcard.
        let existing = try #require(expectAnswer(self.query("www.wild.example.com", .mx)))
        #expect(existing.outcome == .nodata)
        // wild.example.com itself is an empty non-terminal, not a wildcard match.
        let parent = try #require(expectAnswer(self.query("wild.example.com", .mx)))
        #expect(parent.outcome == .nodata)
    }

    @Test func duplicateRecordsAreMerged() throws {
        let resolver = try makeResolver("a A 192.0.2.1\na 60 A 192.0.2.1\na A 192.0.2.2\n")
        let answer = try #require(expectAnswer(resolver.immediateResult(for: DNSQuestion(name: "a.example.com", type: .a))))
        #expect(answer.records.map(\.data) == [.a(ip("192.0.2.1")), .a(ip("192.0.2.2"))])
    }

    // MARK: Faults

    @Test(arguments: [(ZoneFault.timeout, DNSError.Kind.timeout), (.servfail, .servfail), (.refused, .refused)])
    func faultsFailEveryTypeOfTheName(_ fault: ZoneFault, _ kind: DNSError.Kind) async throws {
        self.resolver.setFault(fault, for: "Mail.Example.COM.")
        for type in [DNSRecordType.a, .aaaa, .mx, .txt] {
            let immediate = try #require(expectFailure(self.query("mail.example.com", type)))
            #expect(immediate.kind == kind)
            #expect(immediate.name == "mail.example.com")
            #expect(immediate.type == type)
            let resolved = try #require(expectFailure(await self.resolver.resolve(DNSQuestion(name: "mail.example.com", type: type))))
            #expect(resolved.kind == kind)
        }
        // Only that exact name: neither its parent nor a name reaching it through a CNAME.
        #expect(try #require(expectAnswer(self.query("example.com", .mx))).outcome == .ok)
        #expect(try #require(expectAnswer(self.query("alias.example.com", .a))).outcome == .ok)

        self.resolver.setFault(nil, for: "mail.example.com")
        #expect(try #require(expectAnswer(self.query("mail.example.com", .a))).outcome == .ok)
    }

    @Test func aFaultForOneTypeLeavesTheOthers() throws {
        self.resolver.setFault(.timeout, for: "mail.example.com", type: .aaaa)
        #expect(try #require(expectFailure(self.query("mail.example.com", .aaaa))).kind == .timeout)
        #expect(try #require(expectAnswer(self.query("mail.example.com", .a))).outcome == .ok)
        // The per-type fault wins over the per-name one.
        self.resolver.setFault(.refused, for: "mail.example.com")
        #expect(try #require(expectFailure(self.query("mail.example.com", .aaaa))).kind == .timeout)
        #expect(try #require(expectFailure(self.query("mail.example.com", .a))).kind == .refused)
    }

    @Test func aGlobalDelayMakesAnswersNotImmediate() async throws {
        self.resolver.delay = .milliseconds(20)
        #expect(self.resolver.delay == .milliseconds(20))
        let question = DNSQuestion(name: "mail.example.com", type: .a)
        #expect(self.resolver.immediateResult(for: question) == nil)
        let clock = ContinuousClock()
        let start = clock.now
        let answer = try #require(expectAnswer(await self.resolver.resolve(question)))
        #expect(clock.now - start >= .milliseconds(20))
        #expect(answer.records.count == 1)

        self.resolver.delay = .zero
        #expect(self.resolver.immediateResult(for: question) != nil)
    }

    @Test func aDelayFaultDelaysOnlyThatName() async throws {
        self.resolver.setFault(.delay(.milliseconds(10)), for: "mail.example.com")
        #expect(self.query("mail.example.com", .a) == nil)
        #expect(self.query("txtonly.example.com", .txt) != nil)
        let answer = try #require(expectAnswer(await self.resolver.resolve(DNSQuestion(name: "mail.example.com", type: .a))))
        #expect(answer.outcome == .ok)
    }

    @Test func aTimeoutAfterADelay() async throws {
        self.resolver.delay = .milliseconds(10)
        self.resolver.setFault(.timeout, for: "mail.example.com")
        let question = DNSQuestion(name: "mail.example.com", type: .a)
        #expect(self.resolver.immediateResult(for: question) == nil)
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try #require(expectFailure(await self.resolver.resolve(question))).kind == .timeout)
        #expect(clock.now - start >= .milliseconds(10))
    }

    // MARK: Rotation and statistics

    @Test func rotatesRecordsBetweenLookupsWhenAsked() throws {
        let text = "r A 192.0.2.1\nr A 192.0.2.2\nr A 192.0.2.3\n"
        let question = DNSQuestion(name: "r.example.com", type: .a)
        func order(_ resolver: ZoneResolver) throws -> [String] {
            try #require(expectAnswer(resolver.immediateResult(for: question))).records.map { record in
                guard case .a(let address) = record.data else { return "?" }
                return address.description
            }
        }
        let rotating = try makeResolver(text, rotate: true)
        #expect(rotating.rotatesRecords)
        #expect(try order(rotating) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
        #expect(try order(rotating) == ["192.0.2.2", "192.0.2.3", "192.0.2.1"])
        #expect(try order(rotating) == ["192.0.2.3", "192.0.2.1", "192.0.2.2"])
        #expect(try order(rotating) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"])

        let fixed = try makeResolver(text)
        #expect(!fixed.rotatesRecords)
        for _ in 0..<3 {
            #expect(try order(fixed) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
        }
    }

    @Test func countsAndLogsTheQuestionsAnswered() async throws {
        let first = DNSQuestion(name: "mail.example.com", type: .a)
        let second = DNSQuestion(name: "example.com", type: .mx)
        _ = self.resolver.immediateResult(for: first)
        _ = await self.resolver.resolve(second)
        self.resolver.delay = .seconds(60)
        #expect(self.resolver.immediateResult(for: first) == nil)  // not answered, not counted
        #expect(self.resolver.questionCount == 2)
        #expect(self.resolver.askedQuestions == [first, second])
        self.resolver.resetQuestionLog()
        #expect(self.resolver.questionCount == 0)
        #expect(self.resolver.askedQuestions.isEmpty)
    }

    @Test func isSafeToUseFromManyTasks() async throws {
        let resolver = try makeResolver("r A 192.0.2.1\nr A 192.0.2.2\n", rotate: true)
        let firsts = await withTaskGroup(of: String.self) { group in
            for index in 0..<200 {
                group.addTask {
                    if index % 7 == 0 { resolver.setFault(nil, for: "other.example.com") }
                    let result = await resolver.resolve(DNSQuestion(name: "r.example.com", type: .a))
                    guard case .success(let answer) = result, case .a(let address) = answer.records.first?.data else { return "" }
                    return address.description
                }
            }
            var firsts: [String: Int] = [:]
            for await first in group { firsts[first, default: 0] += 1 }
            return firsts
        }
        // Strict alternation: every lookup advanced the rotation exactly once.
        #expect(firsts == ["192.0.2.1": 100, "192.0.2.2": 100])
        #expect(resolver.questionCount == 200)
    }

    @Test func reportsItsStrategy() throws {
        #expect(try makeResolver("", ipStrategy: .ipv6ThenIpv4).ipStrategy == .ipv6ThenIpv4)
        #expect(ZoneResolver(records: []).ipStrategy == .ipv4ThenIpv6)
    }
}
