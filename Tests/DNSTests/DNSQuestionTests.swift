import Testing

@testable import DNS

/// A question is hashed once, when made (docs/dns-resolver.md, "Semantics, as tested": the
/// cache); equality must still be by name and type, whatever the stored hash says.
@Suite("DNSQuestion")
struct DNSQuestionTests {
    @Test("equal by name and type, and keys a dictionary as such")
    func equalityAndHashing() {
        let question = DNSQuestion(name: "mail.example.com", type: .a)
        #expect(question == DNSQuestion(name: "mail.example.com", type: .a))
        #expect(question.hashValue == DNSQuestion(name: "mail.example.com", type: .a).hashValue)
        #expect(question != DNSQuestion(name: "mail.example.com", type: .aaaa))
        #expect(question != DNSQuestion(name: "mail.example.net", type: .a))
        // Names are compared as given: the resolver lowercases before it looks up.
        #expect(question != DNSQuestion(name: "MAIL.example.com", type: .a))

        var answers: [DNSQuestion: Int] = [:]
        for index in 0..<1_000 { answers[DNSQuestion(name: "t\(index).example", type: .txt)] = index }
        answers[DNSQuestion(name: "t7.example", type: .mx)] = -1
        #expect(answers.count == 1_001)
        #expect(answers[DNSQuestion(name: "t7.example", type: .txt)] == 7)
        #expect(answers[DNSQuestion(name: "t7.example", type: .mx)] == -1)
        answers[DNSQuestion(name: "t7.example", type: .txt)] = nil
        #expect(answers[DNSQuestion(name: "t7.example", type: .txt)] == nil)
        #expect(answers[DNSQuestion(name: "t8.example", type: .txt)] == 8)
    }
}
