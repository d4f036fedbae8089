import Testing

@testable import DNS

/// `$DNSSEC` marks in zone files, the status the zone resolver gives its answers, and how
/// the lookups combine the status of the answers they rest on into `secure`.
@Suite("DNSSEC status: zone marks and lookups")
struct DNSSecurityTests {
    static let zone = """
        $ORIGIN example.com.
        $DNSSEC secure
        @          MX 10 mail
        mail       A 192.0.2.25
        alias      CNAME www.unsigned
        chain      CNAME bad
        $DNSSEC insecure unsigned
        www.unsigned A 192.0.2.80
        $DNSSEC bogus bad "RRSIG expired 2026-11-20 for bad.example.com/A"
        bad        A 192.0.2.66
        $DNSSEC indeterminate slow.example.com.
        slow       A 192.0.2.40
        $DNSSEC bogus gone
        """

    func answer(_ name: String, _ type: DNSRecordType = .a) throws -> DNSAnswer {
        let resolver = ZoneResolver(contents: try ZoneFile.parseContents(Self.zone))
        guard let result = resolver.immediateResult(for: DNSQuestion(name: name, type: type)) else {
            throw ZoneFileError(path: "", line: 0, message: "no immediate answer")
        }
        return try result.get()
    }

    @Test func marksCoverTheirNameAndTheNamesBelow() throws {
        #expect(try self.answer("example.com", .mx).security == .secure)
        #expect(try self.answer("mail.example.com").security == .secure)
        // Denials under a secure mark are secure: the zone is signed, so is its NSEC chain.
        #expect(try self.answer("nope.example.com").security == .secure)
        #expect(try self.answer("nope.example.com").outcome == .nxdomain)
        #expect(try self.answer("www.unsigned.example.com").security.status == .insecure)
        #expect(try self.answer("www.example.org").security == .insecure, "unmarked names are not validated")
    }

    @Test func aChainIsOnlyAsSecureAsItsWeakestName() throws {
        #expect(try self.answer("alias.example.com").security.status == .insecure)
        let bogus = try self.answer("chain.example.com")
        #expect(bogus.security == DNSSecurity(.bogus, reason: "RRSIG expired 2026-11-20 for bad.example.com/A"))
        #expect(bogus.validationFailure?.kind == .bogus)
        #expect(bogus.validationFailure?.detail == "RRSIG expired 2026-11-20 for bad.example.com/A")
    }

    @Test func bogusAndIndeterminateAnswersAreErrorsForRules() throws {
        let bad = DNSQueryResult.success(try self.answer("bad.example.com")).failingUnvalidatedAnswers
        let expired = DNSSecurity(.bogus, reason: "RRSIG expired 2026-11-20 for bad.example.com/A")
        #expect(throws: DNSError(kind: .bogus, name: "bad.example.com", type: .a,
                                 detail: "RRSIG expired 2026-11-20 for bad.example.com/A", security: expired)) { try bad.get() }
        let slow = DNSQueryResult.success(try self.answer("slow.example.com")).failingUnvalidatedAnswers
        #expect(throws: DNSError(kind: .servfail, name: "slow.example.com", type: .a,
                                 detail: "DNSSEC status indeterminate: marked indeterminate at <zone>:11",
                                 security: DNSSecurity(.indeterminate, reason: "marked indeterminate at <zone>:11"))) { try slow.get() }
        let gone = try self.answer("gone.example.com")
        #expect(gone.security == DNSSecurity(.bogus, reason: "marked bogus at <zone>:13"), "a bogus mark without a reason says where it is")
        let fine = DNSQueryResult.success(try self.answer("mail.example.com"))
        #expect(fine.failingUnvalidatedAnswers == fine)
    }

    @Test(arguments: [
        ("$DNSSEC", "$DNSSEC takes a status"),
        ("$DNSSEC signed", "$DNSSEC takes a status"),
        ("$DNSSEC secure example.com. \"why\"", "$DNSSEC secure takes no reason"),
        ("$DNSSEC bogus example.com. \"a\" \"b\"", "$DNSSEC takes a status"),
        ("$DNSSEC bogus example.com. extra", "$DNSSEC takes a status"),
        ("$DNSSEC secure a..b.", "empty label"),
        ("$DNSSEC secure example.com.\n$DNSSEC bogus example.com.", "$DNSSEC: example.com is already marked"),
    ])
    func badDirectivesAreErrorsWithTheirLine(text: String, message: String) {
        let error = #expect(throws: ZoneFileError.self) { try ZoneFile.parseContents(text, path: "fixture.zone") }
        #expect(error?.description.contains(message) == true, "\(error?.description ?? "")")
        #expect(error?.description.hasPrefix("fixture.zone:") == true)
    }

    @Test func aMarkWithoutNameNeedsAnOrigin() {
        let error = #expect(throws: ZoneFileError.self) { try ZoneFile.parseContents("$DNSSEC secure") }
        #expect(error?.message == "$DNSSEC without a name needs an $ORIGIN")
        #expect(throws: Never.self) { try ZoneFile.parse("$ORIGIN x.\n$DNSSEC bogus\nwww A 192.0.2.1") }
    }

    // MARK: - secure on lookup results

    func answer(_ name: String, _ type: DNSRecordType, _ outcome: DNSOutcome, _ records: [DNSRecordData] = [],
                secure: Bool) -> DNSQueryResult {
        .success(DNSAnswer(name: name, type: type, outcome: outcome,
                           records: records.map { DNSRecord(name: name, ttl: 300, data: $0) },
                           security: secure ? .secure : .insecure))
    }

    @Test func anAddressLookupIsSecureOnlyWhenEveryFamilyAskedIs() throws {
        let a = self.answer("x", .a, .ok, [.a(ip("192.0.2.1"))], secure: true)
        let insecureAAAA = self.answer("x", .aaaa, .ok, [.aaaa(ip("2001:db8::1"))], secure: false)
        let secureNoAAAA = self.answer("x", .aaaa, .nodata, secure: true)
        #expect(try AddressLookup.merge([a, insecureAAAA]).get().secure == false)
        #expect(try AddressLookup.merge([a, secureNoAAAA]).get().secure == true)
        #expect(try AddressLookup.merge([a]).get().secure == true)
        let failed = DNSQueryResult.failure(DNSError(kind: .timeout, name: "x", type: .aaaa))
        #expect(try AddressLookup.merge([a, failed]).get().secure == false, "an unanswered family is not secure")
        #expect(try AddressLookup.merge([self.answer("x", .a, .nxdomain, secure: true),
                                         self.answer("x", .aaaa, .nxdomain, secure: true)]).get()
                == AddressLookupResult(addresses: [], outcome: .nxdomain, secure: true))
    }

    @Test(arguments: [(true, true, true), (true, false, false), (false, true, false)])
    func anImplicitRouteRestsOnTheMXDenialAndTheAddresses(mxSecure: Bool, addressesSecure: Bool, expected: Bool) throws {
        var plan = MXLocation(domain: "x", seed: 1)
        _ = plan.start()
        guard case .need(let questions) = plan.resume(with: [self.answer("x", .mx, .nodata, secure: mxSecure)]) else {
            Issue.record("no address questions")
            return
        }
        #expect(questions.map(\.type) == [.a, .aaaa])
        let step = plan.resume(with: [self.answer("x", .a, .ok, [.a(ip("192.0.2.1"))], secure: addressesSecure),
                                      self.answer("x", .aaaa, .nodata, secure: true)])
        guard case .done(let route) = step else { Issue.record("not done"); return }
        #expect(try route.get() == MXRoute(kind: .implicit, hosts: [MXHost(host: "x", preference: 0)], secure: expected))
    }

    @Test func anMXRouteIsAsSecureAsItsMXAnswer() throws {
        for secure in [true, false] {
            var plan = MXLocation(domain: "x", seed: 1)
            _ = plan.start()
            let step = plan.resume(with: [self.answer("x", .mx, .ok, [.mx(preference: 10, exchange: "mail.x")], secure: secure)])
            guard case .done(let route) = step else { Issue.record("not done"); return }
            #expect(try route.get().secure == secure)
        }
    }

    @Test func iprevRestsOnThePTRAndTheConfirmingAddresses() {
        func check(ptrSecure: Bool, forward: [(addresses: [String], secure: Bool)]) -> IprevResult? {
            var plan = IprevCheck(ip: ip("192.0.2.10"))
            _ = plan.start()
            let names = forward.indices.map { "n\($0).x" }
            let ptr = self.answer("10.2.0.192.in-addr.arpa", .ptr, .ok, names.map { .ptr($0) }, secure: ptrSecure)
            guard case .need = plan.resume(with: [ptr]) else { return nil }
            let results = zip(names, forward).map { name, answer in
                self.answer(name, .a, answer.addresses.isEmpty ? .nodata : .ok, answer.addresses.map { .a(ip($0)) }, secure: answer.secure)
            }
            guard case .done(let result) = plan.resume(with: results) else { return nil }
            return result
        }
        // pass: the PTR and the confirming name's addresses; another name's do not matter.
        #expect(check(ptrSecure: true, forward: [([], false), (["192.0.2.10"], true)]) == IprevResult(status: .pass, name: "n1.x", secure: true))
        #expect(check(ptrSecure: true, forward: [(["192.0.2.10"], false)])?.secure == false)
        #expect(check(ptrSecure: false, forward: [(["192.0.2.10"], true)])?.secure == false)
        // fail: every name's addresses.
        #expect(check(ptrSecure: true, forward: [(["192.0.2.99"], true), ([], true)]) == IprevResult(status: .fail, secure: true))
        #expect(check(ptrSecure: true, forward: [(["192.0.2.99"], true), ([], false)]) == IprevResult(status: .fail, secure: false))
    }
}
