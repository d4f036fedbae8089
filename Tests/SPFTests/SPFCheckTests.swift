import Foundation
import Testing

import DNS

/// A zone of TXT, A, MX and PTR records for one test, written as (name, record) pairs.
private func zone(_ entries: [(String, DNSRecordData)]) -> ZoneResolver {
    ZoneResolver(records: entries.map { DNSRecord(name: $0.0, ttl: 300, data: $0.1) })
}

/// A TXT record holding `text`, cut into character-strings of at most 255 octets as DNS does.
private func txt(_ text: String) -> DNSRecordData {
    let bytes = Array(text.utf8)
    var strings: [[UInt8]] = []
    var start = 0
    repeat {
        strings.append(Array(bytes[start..<min(start + 255, bytes.count)]))
        start += 255
    } while start < bytes.count
    return .txt(strings)
}

private func address(_ text: String) -> IPAddress { IPAddress(text)! }

/// Runs a check on the immediate path (every zone answer is at hand), recording an issue
/// if it had to wait.
private func check(_ resolver: ZoneResolver, ip: String = "192.0.2.10", sender: String = "user@example.com",
                   helo: String? = "mail.example.org", receiver: String = "mx.example.net",
                   sourceLocation: SourceLocation = #_sourceLocation) -> SPFResult? {
    let identity = SPFCheck.identity(mailFrom: sender, helo: helo)
    var plan = SPFCheck(ip: address(ip), domain: identity.domain, sender: identity.sender, helo: helo, receiver: receiver)
    guard case .done(let result) = resolver.advanceImmediately(&plan, from: plan.start()) else {
        Issue.record("SPFCheck waited on a zone resolver", sourceLocation: sourceLocation)
        return nil
    }
    return result
}

@Suite("SPF check_host()")
struct SPFCheckTests {
    @Test("a pass names the matching term; a fail carries the expanded explanation")
    func passAndFail() throws {
        let resolver = zone([
            ("example.com", txt("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all exp=why.example.com")),
            ("why.example.com", txt("%{i} may not send for %{d} (%{s}, helo %{h}, at %{r}, from %{c})")),
        ])
        let pass = try #require(check(resolver))
        #expect(pass.result == .pass)
        #expect(pass.mechanism == "ip4:192.0.2.0/24")
        #expect(pass.domain == "example.com")
        #expect(pass.explanation == nil)
        let pass6 = try #require(check(resolver, ip: "2001:db8::5"))
        #expect(pass6.mechanism == "ip6:2001:db8::/32")
        let fail = try #require(check(resolver, ip: "198.51.100.7"))
        #expect(fail.result == .fail)
        #expect(fail.mechanism == "-all")
        #expect(fail.explanation
                == "198.51.100.7 may not send for example.com (user@example.com, helo mail.example.org, at mx.example.net, from 198.51.100.7)")
    }

    @Test("the HELO identity when the reverse-path is null, with postmaster as local part")
    func heloIdentity() throws {
        let identity = SPFCheck.identity(mailFrom: "", helo: "mail.example.org")
        #expect(identity.domain == "mail.example.org")
        #expect(identity.sender == "postmaster@mail.example.org")
        let resolver = zone([
            ("mail.example.org", txt("v=spf1 exists:%{l}.%{d}.allow.example.net -all")),
            ("postmaster.mail.example.org.allow.example.net", .a(address("127.0.0.2"))),
        ])
        let result = try #require(check(resolver, sender: "", helo: "mail.example.org"))
        #expect(result.result == .pass)
    }

    @Test("an IP-literal or single-label HELO is no domain: none, without a query")
    func ipLiteralHelo() throws {
        let resolver = zone([])
        for helo in ["[192.0.2.1]", "192.0.2.1", "localhost", "[IPv6:2001:db8::1]"] {
            let result = try #require(check(resolver, sender: "", helo: helo))
            #expect(result.result == SPFResult.Kind.none, "\(helo)")
            #expect(result.reason != nil)
        }
        #expect(resolver.questionCount == 0)
    }

    @Test("DNS trouble is temperror with a reason, never a throw")
    func temperror() throws {
        let resolver = zone([("example.com", txt("v=spf1 a:down.example.com -all"))])
        resolver.setFault(.timeout, for: "down.example.com")
        let result = try #require(check(resolver))
        #expect(result.result == .temperror)
        #expect(result.reason?.contains("down.example.com") == true)
        resolver.setFault(.servfail, for: "example.com")
        #expect(check(resolver)?.result == .temperror)
    }

    @Test("the asynchronous path suspends on a slow resolver and gives the same result")
    func asyncPath() async throws {
        let resolver = zone([
            ("example.com", txt("v=spf1 mx -all")),
            ("example.com", .mx(preference: 10, exchange: "mx.example.com")),
            ("mx.example.com", .a(address("192.0.2.10"))),
        ])
        resolver.delay = .milliseconds(1)
        var plan = SPFCheck(ip: address("192.0.2.10"), domain: "example.com", sender: "a@example.com", helo: nil)
        guard case .need = resolver.advanceImmediately(&plan, from: plan.start()) else {
            Issue.record("a delayed resolver must make the check wait")
            return
        }
        let result = await resolver.run(SPFCheck(ip: address("192.0.2.10"), domain: "example.com",
                                                 sender: "a@example.com", helo: nil))
        #expect(result.result == .pass)
        #expect(result.mechanism == "mx")
    }

    // MARK: Hostile records

    @Test("an explanation cannot inject SMTP: CR, LF and NUL from DNS or macros never reach it")
    func explanationInjection() throws {
        let resolver = zone([
            ("example.com", txt("v=spf1 -all exp=why.example.com")),
            ("why.example.com", txt("Denied\r\n250 OK\r\nRCPT TO:<victim@example.net>")),
            ("example.org", txt("v=spf1 -all exp=why.example.org")),
            ("why.example.org", txt("Denied for %{l} " + String(repeating: "x", count: 1000))),
        ])
        // A TXT explanation with control characters is not a valid explain-string: ignored.
        let raw = try #require(check(resolver))
        #expect(raw.result == .fail)
        #expect(raw.explanation == nil)
        // A macro carries the hostile local part: removed, and the length bounded.
        let viaMacro = try #require(check(resolver, sender: "\"a\r\n250 OK\u{0}\u{7f}é\"@example.org"))
        #expect(viaMacro.result == .fail)
        let explanation = try #require(viaMacro.explanation)
        #expect(explanation.hasPrefix("Denied for \"a250 OK\""))
        #expect(explanation.utf8.count == SPFExplanation.maximumLength)
        #expect(explanation.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7e })
        #expect(SPFExplanation.sanitised("a\r\nb\u{0}c\td") == "abcd")
    }

    @Test("a 10,000-term include loop ends in permerror after 10 DNS terms, quickly")
    func includeLoop() throws {
        let terms = Array(repeating: "include:loop.example.com", count: 10_000).joined(separator: " ")
        let resolver = zone([
            ("example.com", txt("v=spf1 include:loop.example.com -all")),
            ("loop.example.com", txt("v=spf1 " + terms + " -all")),
        ])
        let clock = ContinuousClock()
        var result: SPFResult?
        let elapsed = clock.measure { result = check(resolver) }
        #expect(result?.result == .permerror)
        #expect(result?.reason?.contains("more than 10 DNS-querying terms") == true)
        #expect(resolver.questionCount == 11)
        #expect(elapsed < .seconds(5))
        // redirect= to itself is the same loop.
        let redirect = zone([("example.com", txt("v=spf1 redirect=example.com"))])
        #expect(check(redirect)?.result == .permerror)
        #expect(redirect.questionCount == 11)
    }

    @Test("a record causing more than 10 lookups is a permerror at the 11th term")
    func tooManyLookups() throws {
        let names = (1...11).map { "a:h\($0).example.com" }.joined(separator: " ")
        var entries: [(String, DNSRecordData)] = [("example.com", txt("v=spf1 \(names) ip4:192.0.2.10 -all"))]
        for index in 1...11 { entries.append(("h\(index).example.com", .a(address("198.51.100.\(index)")))) }
        let resolver = zone(entries)
        let result = try #require(check(resolver))
        #expect(result.result == .permerror)
        #expect(result.reason?.contains("a:h11.example.com") == true)
        #expect(resolver.questionCount == 11)
        // Ten are allowed.
        let ten = zone(Array(entries.dropFirst()) + [
            ("example.com", txt("v=spf1 " + (1...10).map { "a:h\($0).example.com" }.joined(separator: " ") + " -all")),
        ])
        #expect(check(ten)?.result == .fail)
    }

    @Test("more than 2 void lookups is a permerror; 2 are not")
    func voidLookups() throws {
        let two = zone([("example.com", txt("v=spf1 a:n1.example.com mx:n2.example.com -all"))])
        #expect(check(two)?.result == .fail)
        let three = zone([("example.com", txt("v=spf1 a:n1.example.com mx:n2.example.com exists:n3.example.com -all"))])
        let result = try #require(check(three))
        #expect(result.result == .permerror)
        #expect(result.reason?.contains("void") == true)
    }

    @Test("mx: more than 10 hosts is a permerror; ptr: names past the 10th are ignored")
    func namesPerLookup() throws {
        var mxEntries: [(String, DNSRecordData)] = [("example.com", txt("v=spf1 mx -all"))]
        for index in 1...11 { mxEntries.append(("example.com", .mx(preference: UInt16(index), exchange: "mx\(index).example.com"))) }
        let mx = try #require(check(zone(mxEntries)))
        #expect(mx.result == .permerror)

        var ptrEntries: [(String, DNSRecordData)] = [("example.com", txt("v=spf1 ptr -all"))]
        for index in 1...12 {
            ptrEntries.append(("10.2.0.192.in-addr.arpa", .ptr("h\(index).example.com")))
            ptrEntries.append(("h\(index).example.com", .a(address(index == 12 ? "192.0.2.10" : "198.51.100.1"))))
        }
        let resolver = zone(ptrEntries)
        #expect(check(resolver)?.result == .fail)
        #expect(resolver.questionCount == 1 + 1 + 10)
        ptrEntries.append(("h3.example.com", .a(address("192.0.2.10"))))
        let ptr = try #require(check(zone(ptrEntries)))
        #expect(ptr.result == .pass)
        #expect(ptr.mechanism == "ptr")
    }

    @Test("a macro expanding past 253 characters is cut from the left before it is asked")
    func longMacroExpansion() throws {
        let local = Array(repeating: "abcdefghij", count: 20).joined(separator: ".")
        let resolver = zone([("example.com", txt("v=spf1 exists:%{l}.%{l}.%{l}.example.com -all"))])
        let result = try #require(check(resolver, sender: "\(local)@example.com"))
        #expect(result.result == .fail)
        let asked = resolver.askedQuestions.map(\.name)
        #expect(asked.count == 2)
        let name = try #require(asked.last)
        #expect(name.utf8.count <= 253)
        #expect(name.hasSuffix(".abcdefghij.example.com"))
        // The cut keeps the longest run of whole labels that fits: 253 characters exactly.
        let label = String(repeating: "b", count: 61)
        let exact = zone([("example.com", txt("v=spf1 exists:%{l}.example.com -all"))])
        // The last four labels and the domain are 61+1+61+1+61+1+29+1+11 = 227 characters;
        // with 25 d's and a dot, 253: "yy.x." before them is cut, though "x" starts
        // exactly 255 characters from the end.
        let tail = [label, label, label, String(repeating: "c", count: 29)].joined(separator: ".")
        let filler = String(repeating: "d", count: 25)
        #expect(check(exact, sender: "yy.x.\(filler).\(tail)@example.com")?.result == .fail)
        let exactName = try #require(exact.askedQuestions.last?.name)
        #expect(exactName == "\(filler).\(tail).example.com")
        #expect(exactName.utf8.count == 253)
        // One label too long to ask for names nothing: no match, no query.
        let longLabel = String(repeating: "x", count: 64)
        let resolver2 = zone([("example.com", txt("v=spf1 a:%{l}.example.com ?all"))])
        #expect(check(resolver2, sender: "\(longLabel)@example.com")?.result == .neutral)
        #expect(resolver2.questionCount == 1)
    }

    @Test("a hostile sender of a megabyte, repeated by hundreds of macros, is expanded in bounded time")
    func hugeSender() throws {
        let local = String(repeating: "a.", count: 500_000) + "z"
        let macros = Array(repeating: "%{l}", count: 200).joined(separator: ".")
        let resolver = zone([
            ("example.com", txt("v=spf1 exists:\(macros).example.com a:%{l}.%{l}.example.com -all exp=why.example.com")),
            ("why.example.com", txt(Array(repeating: "%{l}%{L}", count: 100).joined())),
        ])
        let clock = ContinuousClock()
        var result: SPFResult?
        let elapsed = clock.measure { result = check(resolver, sender: "\(local)@example.com") }
        #expect(result?.result == .fail)
        #expect(result?.explanation?.utf8.count == SPFExplanation.maximumLength)
        #expect(resolver.askedQuestions.dropFirst().allSatisfy { $0.name.utf8.count <= 253 })
        #expect(resolver.askedQuestions.last?.name == "why.example.com")
        #expect(elapsed < .seconds(10))
        // A domain of a megabyte is no domain.
        let huge = String(repeating: "ä", count: 500_000) + ".example"
        #expect(check(resolver, sender: "a@\(huge)")?.result == SPFResult.Kind.none)
    }

    @Test("%{p} is the checked domain's own validated name, else a subdomain's, per current domain")
    func validatedNameChoice() throws {
        let resolver = zone([
            ("example.com", txt("v=spf1 include:example.net exists:%{p}.top.example.com -all")),
            ("example.net", txt("v=spf1 exists:%{p}.inc.example.com ?all")),
            ("10.2.0.192.in-addr.arpa", .ptr("other.example.org")),
            ("10.2.0.192.in-addr.arpa", .ptr("mail.example.net")),
            ("10.2.0.192.in-addr.arpa", .ptr("mail.example.com")),
            ("10.2.0.192.in-addr.arpa", .ptr("liar.example.com")),
            ("other.example.org", .a(address("192.0.2.10"))),
            ("mail.example.net", .a(address("192.0.2.10"))),
            ("mail.example.com", .a(address("192.0.2.10"))),
            ("liar.example.com", .a(address("198.51.100.1"))),
            ("mail.example.com.top.example.com", .a(address("127.0.0.2"))),
        ])
        let result = try #require(check(resolver))
        #expect(result.result == .pass)
        #expect(result.mechanism == "exists:%{p}.top.example.com")
        // The include asked with its own domain's name; PTR and addresses asked once.
        let asked = resolver.askedQuestions.map(\.name)
        #expect(asked.contains("mail.example.net.inc.example.com"))
        #expect(asked.filter { $0 == "10.2.0.192.in-addr.arpa" }.count == 1)
        #expect(!asked.contains("liar.example.com.top.example.com"))
    }

    @Test("a name expanded with a backslash names nothing: no query, whatever the resolver's escapes")
    func backslashInName() throws {
        let resolver = zone([("example.com", txt("v=spf1 exists:%{l}.example.com ?all"))])
        let result = try #require(check(resolver, sender: "a\\046b@example.com"))
        #expect(result.result == .neutral)
        #expect(resolver.askedQuestions.map(\.name) == ["example.com"])
    }

    @Test("a digit transformer keeps that many right-hand parts; zero is a syntax error, a huge one keeps all")
    func digitTransformer() throws {
        let resolver = zone([
            ("example.com", txt("v=spf1 exists:%{d000000000000000000001}.x.example.com exists:%{d99999999999999999999}.y.example.com -all")),
            ("com.x.example.com", .a(address("127.0.0.2"))),
        ])
        #expect(check(resolver)?.mechanism == "exists:%{d000000000000000000001}.x.example.com")
        let resolver2 = zone([
            ("example.com", txt("v=spf1 exists:%{d99999999999999999999}.y.example.com -all")),
            ("example.com.y.example.com", .a(address("127.0.0.2"))),
        ])
        #expect(check(resolver2)?.result == .pass)
    }

    @Test("record selection: none, several records, a broken record")
    func recordSelection() throws {
        #expect(check(zone([("example.com", txt("not spf"))]))?.result == SPFResult.Kind.none)
        #expect(check(zone([("example.com", txt("v=spf10 -all"))]))?.result == SPFResult.Kind.none)
        let two = zone([("example.com", txt("v=spf1 -all")), ("example.com", txt("v=spf1 +all"))])
        #expect(check(two)?.result == .permerror)
        for broken in ["v=spf1 -all foo", "v=spf1 a:1.2.3.4", "v=spf1 ip4:192.0.2.300", "v=spf1 a/33",
                       "v=spf1 exists:%{z}.example.com", "v=spf1 redirect=a.example.com redirect=b.example.com",
                       "v=spf1 include", "v=spf1 all:x", "v=spf1 exists:%{d0}.example.com",
                       "v=spf1 exists:%{l-r}.example.com", "v=spf1 a:%{c}.example.com", "v=spf1 ip6:2001:db8::/129",
                       "v=spf1 a//129", "v=spf1 mx/024", "v=spf1 exists:100%.example.com"] {
            let result = check(zone([("example.com", txt(broken))]))
            #expect(result?.result == .permerror, "\(broken)")
            #expect(result?.reason != nil, "\(broken)")
        }
    }

    @Test("modifier names are case-insensitive (RFC 7208 §12; pyspf compares them case-sensitively)")
    func modifierCase() throws {
        let resolver = zone([
            ("example.com", txt("v=spf1 Redirect=other.example.com")),
            ("other.example.com", txt("v=spf1 -all EXP=why.example.com")),
            ("why.example.com", txt("no: %{t}")),
        ])
        let result = try #require(check(resolver))
        #expect(result.result == .fail)
        #expect(result.mechanism == "-all")
        let explanation = try #require(result.explanation)
        let seconds = try #require(Int(explanation.dropFirst(4)))
        #expect(abs(seconds - Int(Date().timeIntervalSince1970)) < 60)
    }

    @Test("a v=spf1 record with octets that are not UTF-8 is a permerror")
    func invalidUTF8() throws {
        let resolver = zone([("example.com", .txt([Array("v=spf1 a:".utf8) + [0xff, 0xfe] + Array(".example.com -all".utf8)]))])
        #expect(check(resolver)?.result == .permerror)
    }

    @Test("macros: transformers, delimiters, URL escapes, IPv6 nibbles and %{p}")
    func macros() throws {
        let resolver = zone([
            ("example.com", txt("v=spf1 -all exp=why.example.com")),
            ("why.example.com", txt("%{d2r} %{lr-} %{L} %{i} %{i1r} %{v} %{p} %{o1} %%%_%-")),
            ("a.6.5.4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", .ptr("mail.example.com")),
            ("mail.example.com", .aaaa(address("2001:db8::123:456a"))),
        ])
        let result = try #require(check(resolver, ip: "2001:db8::123:456a", sender: "first-last/x@example.com"))
        // %{lr-}: split on "-" only, reversed; %{L}: the value URL-escaped, case kept;
        // %{i1r}: the nibbles reversed, then the rightmost one.
        #expect(result.explanation == "com.example last/x.first first-last%2Fx "
                + "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.2.3.4.5.6.a 2 ip6 mail.example.com com % %20")
    }
}
