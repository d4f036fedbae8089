@testable import Rules
import Testing

@Suite("PerStage")
struct PerStageTests {
    /// Loading appends each rule with `entries[stage, default: []].append(...)`: with a getter
    /// and a setter every append copied the stage's whole list, and a script of 20,000 rules
    /// took seconds to load. Appending in place keeps the list's storage.
    @Test("appending through the default subscript modifies the stored array in place")
    func appendsInPlace() {
        var entries = PerStage<[Int]>()
        entries[.rcpt, default: []].reserveCapacity(1_000)
        let storage = entries[.rcpt]?.withUnsafeBufferPointer { $0.baseAddress }
        var moved = 0
        for value in 0..<1_000 {
            entries[.rcpt, default: []].append(value)
            if entries[.rcpt]?.withUnsafeBufferPointer({ $0.baseAddress }) != storage { moved += 1 }
        }
        #expect(moved == 0, "the list was copied on \(moved) of 1,000 appends")
        #expect(entries[.rcpt] == Array(0..<1_000))
        #expect(entries[.helo] == nil)
        #expect(entries.stages == [.rcpt])
    }
}
