import Testing

@testable import DNSResolver

/// Query IDs come from the kernel's CSPRNG a batch at a time (docs/dns-resolver.md, "The UDP
/// path"); the batches must keep coming, and never repeat one another.
@Suite("Query ID pool")
struct QueryIDPoolTests {
    @Test("IDs across several refills look uniformly random")
    func idsAcrossRefills() {
        let pool = QueryIDPool()
        let ids = (0..<2_048).map { _ in pool.take() }
        // 2,048 draws of 16 bits: about 31 repeats expected, over 100 is below one chance in 10^20.
        #expect(Set(ids).count > 2_048 - 100)
        // Each 256-ID batch is new, not the first one again.
        let batches = stride(from: 0, to: ids.count, by: 256).map { Array(ids[$0..<($0 + 256)]) }
        #expect(Set(batches.map { $0.description }).count == batches.count)
        // Both halves of the 16 bits vary.
        #expect(Set(ids.map { $0 >> 8 }).count > 200)
        #expect(Set(ids.map { $0 & 0xFF }).count > 200)
    }
}
