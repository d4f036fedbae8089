import Testing

import DNS

/// Which finished checks may be reused (`SPFCheck.reusableFor`), and the memo's own bounds.
@Suite("SPF results kept for reuse")
struct SPFResultMemoTests {
    private static func txt(_ text: String) -> DNSRecordData { .txt([Array(text.utf8)]) }

    /// example.com: `include` then `mx`, with the MX host's address living 60 s, the rest 300 s.
    private static let resolver = ZoneResolver(records: [
        DNSRecord(name: "example.com", ttl: 300, data: txt("v=spf1 include:_spf.example.net mx -all")),
        DNSRecord(name: "_spf.example.net", ttl: 300, data: txt("v=spf1 ip4:203.0.113.0/24 -all")),
        DNSRecord(name: "example.com", ttl: 300, data: .mx(preference: 10, exchange: "mx.example.com")),
        DNSRecord(name: "mx.example.com", ttl: 60, data: .a(IPAddress("192.0.2.25")!)),
        DNSRecord(name: "void.example", ttl: 300, data: txt("v=spf1 a:nothing.example ip4:192.0.2.0/24 -all")),
        DNSRecord(name: "ptr.example", ttl: 300, data: txt("v=spf1 ptr -all")),
        DNSRecord(name: "macro.example", ttl: 300, data: txt("v=spf1 a:%{d} -all")),
        DNSRecord(name: "macro.example", ttl: 300, data: .a(IPAddress("192.0.2.25")!)),
        DNSRecord(name: "broken.example", ttl: 300, data: txt("v=spf1 bogus:x -all")),
        DNSRecord(name: "notspf.example", ttl: 120, data: txt("hello")),
    ])

    /// The finished check of `ip` for `domain`, run on the zone resolver's immediate path.
    private static func finished(_ ip: String, _ domain: String, memo: SPFResultMemo? = nil) throws -> (SPFResult, SPFCheck) {
        var plan = SPFCheck(ip: IPAddress(ip)!, domain: domain, sender: "someone@\(domain)", helo: "mail.example.org",
                            memo: memo)
        guard case .done(let result) = Self.resolver.advanceImmediately(&plan, from: plan.start()) else {
            throw CheckWaited()
        }
        return (result, plan)
    }

    private struct CheckWaited: Error {}

    @Test("a result read from answers with records is reusable for their shortest TTL less a second")
    func reusableForShortestTTL() throws {
        let (pass, check) = try Self.finished("192.0.2.25", "example.com")
        #expect(pass.result == .pass)
        #expect(check.reusableFor == 59)
        let (fail, failed) = try Self.finished("198.51.100.9", "example.com")
        #expect(fail.result == .fail)
        #expect(failed.reusableFor == 59)
        // TXT records without a v=spf1 one: none, for as long as they live.
        let (none, noRecord) = try Self.finished("192.0.2.25", "notspf.example")
        #expect(none.result == SPFResult.Kind.none)
        #expect(noRecord.reusableFor == 119)
    }

    @Test("not reusable: a void lookup, a PTR name, a macro, a permerror, a temperror, no record at all")
    func notReusable() throws {
        for (ip, domain) in [("192.0.2.25", "void.example"), ("192.0.2.25", "ptr.example"), ("192.0.2.25", "macro.example"),
                             ("192.0.2.25", "broken.example"), ("192.0.2.25", "nowhere.example"), ("192.0.2.25", "localhost")] {
            let (result, check) = try Self.finished(ip, domain)
            #expect(check.reusableFor == nil, "\(domain): \(result.result)")
        }
        let failing = ZoneResolver(records: [])
        failing.setFault(.servfail, for: "example.com")
        var plan = SPFCheck(ip: IPAddress("192.0.2.25")!, domain: "example.com", sender: "a@example.com", helo: nil)
        guard case .done(let result) = failing.advanceImmediately(&plan, from: plan.start()) else { throw CheckWaited() }
        #expect(result.result == .temperror)
        #expect(plan.reusableFor == nil)
    }

    @Test("a check given the memo keeps its result and the next one of the same IP and domain takes it, asking nothing")
    func keptAndTaken() throws {
        let memo = SPFResultMemo(capacity: 8)
        let (first, _) = try Self.finished("192.0.2.25", "example.com", memo: memo)
        #expect(memo.count == 1)
        // The memo answers before any question: a resolver with no data would give temperror.
        var plan = SPFCheck(ip: IPAddress("::ffff:192.0.2.25")!, domain: "example.com", sender: "other@example.com",
                            helo: nil, memo: memo)
        guard case .done(let again) = plan.start() else {
            Issue.record("the kept result was not taken at start")
            return
        }
        #expect(again == first)
        // Another IP or domain is another check.
        #expect(memo.result(ip: IPAddress("192.0.2.26")!, domain: "example.com") == nil)
        #expect(memo.result(ip: IPAddress("192.0.2.25")!, domain: "example.org") == nil)
    }

    @Test("a kept result expires, and the memo never holds more than its capacity")
    func expiryAndCapacity() {
        let clock = TestClock()
        let memo = SPFResultMemo(capacity: 3, now: { clock.nanoseconds })
        let result = SPFResult(result: .pass, domain: "example.com", mechanism: "mx")
        memo.store(result, ip: IPAddress("192.0.2.1")!, domain: "example.com", seconds: 10)
        clock.advance(seconds: 9)
        #expect(memo.result(ip: IPAddress("192.0.2.1")!, domain: "example.com") == result)
        clock.advance(seconds: 1)
        #expect(memo.result(ip: IPAddress("192.0.2.1")!, domain: "example.com") == nil)
        for index in 0..<100 {
            memo.store(result, ip: IPAddress("192.0.2.\(index)")!, domain: "example.com", seconds: 60)
            #expect(memo.count <= 3)
        }
        // The last one stored is always kept.
        #expect(memo.result(ip: IPAddress("192.0.2.99")!, domain: "example.com") == result)
        // Full of results that have not expired: emptied, not swept one result at a time.
        #expect(memo.count == 1)
        // Full with two of three expired: those go, the live one stays.
        clock.advance(seconds: 61)
        memo.store(result, ip: IPAddress("198.51.100.1")!, domain: "example.com", seconds: 10)
        memo.store(result, ip: IPAddress("198.51.100.2")!, domain: "example.com", seconds: 100)
        #expect(memo.count == 3)
        clock.advance(seconds: 11)
        memo.store(result, ip: IPAddress("198.51.100.3")!, domain: "example.com", seconds: 100)
        #expect(memo.count == 2)
        #expect(memo.result(ip: IPAddress("198.51.100.2")!, domain: "example.com") == result)
        // Full with only one of three expired: a sweep that frees so little is not repeated at
        // every store (as results expiring one by one would make it); the memo starts again.
        memo.store(result, ip: IPAddress("198.51.100.4")!, domain: "example.com", seconds: 100)
        #expect(memo.count == 3)
        clock.advance(seconds: 90)
        memo.store(result, ip: IPAddress("198.51.100.5")!, domain: "example.com", seconds: 100)
        #expect(memo.count == 1)
        let none = SPFResultMemo(capacity: 0)
        none.store(result, ip: IPAddress("192.0.2.1")!, domain: "example.com", seconds: 60)
        #expect(none.count == 0)
    }
}

/// A clock tests move by hand.
private final class TestClock: @unchecked Sendable {
    // @unchecked: only the test's own thread touches it.
    private(set) var nanoseconds: UInt64 = 1_000_000_000
    func advance(seconds: UInt64) { self.nanoseconds += seconds * 1_000_000_000 }
}
