import Testing

@testable import DNS

@Suite("SPF record cache")
struct SPFRecordCacheTests {
    @Test("records and syntax errors are kept by text, within the capacity; long texts are not kept")
    func bounded() throws {
        let cache = SPFRecordCache(capacity: 2)
        let first = try cache.record(for: "v=spf1 ip4:192.0.2.0/24 -all").get()
        #expect(first.directives.map(\.text) == ["ip4:192.0.2.0/24", "-all"])
        #expect(try cache.record(for: "v=spf1 ip4:192.0.2.0/24 -all").get() == first)
        #expect(cache.count == 1)
        guard case .failure(let error) = cache.record(for: "v=spf1 bogus") else {
            Issue.record("a syntax error must be returned from the cache too")
            return
        }
        #expect(error.reason.contains("bogus"))
        #expect(cache.count == 2)
        // Full: emptied, then the new text is kept.
        _ = cache.record(for: "v=spf1 ~all")
        #expect(cache.count == 1)
        let long = "v=spf1 " + Array(repeating: "ip4:192.0.2.1", count: 200).joined(separator: " ") + " -all"
        #expect(long.utf8.count > SPFRecordCache.maximumTextLength)
        #expect(try cache.record(for: long).get().directives.count == 201)
        #expect(cache.count == 1)
    }
}
