import Foundation
import Testing
import VrulesTestSupport

/// The fuzz targets' regression corpus (Tests/Fixtures/fuzz/TARGET: the inputs of the
/// coverage-guided runs that reach code no other input does, minimised by `scripts/fuzz.sh
/// TARGET merge`), replayed through each target's properties on every test run, so that a
/// change cannot break on an input a fuzzer once found its way to.
@Suite("the fuzz targets' regression corpus")
struct FuzzCorpusTests {
    static let replay = CLI.binary.deletingLastPathComponent().appendingPathComponent("VrulesFuzz")
    static let corpus = CLI.packageRoot.appendingPathComponent("Tests/Fixtures/fuzz")

    /// The targets the replay tool knows, from its usage line.
    static func targets() throws -> [String] {
        let usage = try ChildProcess.run(Self.replay, [])
        let list = try #require(usage.stdout.split(separator: "(TARGET: ").last?.split(separator: ")").first)
        return list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    @Test("every target has a corpus, and nothing else is there")
    func everyTargetHasACorpus() throws {
        #expect(Self.corpora == (try Self.targets()).sorted())
    }

    /// The corpus directories; `everyTargetHasACorpus` checks they are the targets.
    static let corpora = ((try? FileManager.default.contentsOfDirectory(atPath: corpus.path)) ?? []).sorted()

    @Test("each target keeps its properties on every input of its corpus", arguments: corpora)
    func replay(target: String) throws {
        let directory = Self.corpus.appendingPathComponent(target)
        let inputs = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasPrefix(".") }
        #expect(inputs.count >= 100, "the corpus of \(target) holds \(inputs.count) inputs")
        let output = try ChildProcess.run(Self.replay, [target, directory.path], timeout: 300)
        // A broken property stops the process; its output's last line names the input.
        let last = output.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(output.status == 0, "\(last)\n\(output.stderr.suffix(4000))")
        #expect(last == "\(target): \(inputs.count) inputs, every property held", "\(last)")
    }
}
