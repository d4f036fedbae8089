@testable import Policy
import Testing

/// What an answer line may carry: printable ASCII, single spaces, a bounded length. Text
/// that is already so is passed on as it is.
@Suite("Policy answer text")
struct ReplyTextTests {
    @Test("clean text is unchanged", arguments: [
        "DUNNO", "550 5.7.25 Reverse DNS validation failed", "PREPEND X-Test: a b",
        String(repeating: "x", count: PolicyReplyText.maximumLength), " leading space kept",
    ])
    func clean(text: String) {
        #expect(PolicyReplyText.sanitized(text) == text)
    }

    @Test("control bytes, runs of spaces, trailing spaces, non-ASCII and excess length are cleaned", arguments: [
        ("550 5.7.1 a\r\nb", "550 5.7.1 a b"),
        ("550  5.7.1   two", "550 5.7.1 two"),
        ("DUNNO ", "DUNNO"),
        ("451 4.3.0 bell\u{07}del\u{7f}esc\u{1b}", "451 4.3.0 bell?del?esc?"),
        ("550 5.7.1 j\u{f6}rg", "550 5.7.1 j?rg"),
        ("", ""),
    ])
    func cleaned(text: String, expected: String) {
        #expect(PolicyReplyText.sanitized(text) == expected)
    }

    @Test("text past the bound is cut to it")
    func bounded() {
        let long = String(repeating: "y", count: 100_000)
        #expect(PolicyReplyText.sanitized(long) == String(repeating: "y", count: PolicyReplyText.maximumLength))
    }
}
