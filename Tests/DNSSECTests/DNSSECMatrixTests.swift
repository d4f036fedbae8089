import Foundation
import Testing
import VrulesTestSupport

/// The servers and delv's verdicts, made once per test process and shared by the tests.
private enum Shared {
    static let hierarchy: Result<SignedZoneServers, ServerStartFailure> = {
        do {
            let hierarchy = try SignedZoneServers()
            atexit { if case .success(let started) = Shared.hierarchy { started.stop() } }
            return .success(hierarchy)
        } catch let failure as ServerStartFailure {
            return .failure(failure)
        } catch {
            return .failure(ServerStartFailure("cannot start the signed hierarchy: \(error)"))
        }
    }()

    /// delv's status for every case, in matrix order.
    static let delv: Result<[(status: String, output: String)], ServerStartFailure> = {
        guard FileManager.default.isExecutableFile(atPath: Delv.path) else {
            return .failure(ServerStartFailure("\(Delv.path) is missing: install the Debian package 'bind9-dnsutils' (apt-get install -y bind9-dnsutils)"))
        }
        return hierarchy.flatMap { hierarchy in
            do {
                return .success(try DNSSECCase.matrix.map {
                    try Delv.status(of: $0, anchorFile: hierarchy.delvAnchorFile, upstreamPort: hierarchy.unboundPort)
                })
            } catch {
                return .failure(ServerStartFailure("cannot run delv: \(error)"))
            }
        }
    }()
}

/// One line of the printed matrix.
private struct MatrixRow {
    var question: DNSSECCase
    var delv: String
    var vrules: String?

    static func table(_ rows: [MatrixRow]) -> String {
        let width = max(28, (rows.map { $0.question.description.count }.max() ?? 0) + 2)
        func pad(_ text: String, _ count: Int) -> String { text.padding(toLength: max(count, text.count + 1), withPad: " ", startingAt: 0) }
        var lines = [pad("question", width) + pad("expected", 15) + pad("delv", 15) + (rows.contains { $0.vrules != nil } ? pad("vrules", 24) : "") + "shows"]
        for row in rows {
            lines.append(pad(row.question.description, width) + pad(row.question.expected.rawValue, 15) + pad(row.delv, 15)
                + (row.vrules.map { pad($0, 24) } ?? "") + row.question.shows)
        }
        return lines.joined(separator: "\n")
    }
}

@Suite("DNSSEC matrix: a signed private hierarchy on Knot, Unbound upstream, delv as the oracle", .serialized)
struct DNSSECMatrixTests {
    @Test("the matrix covers at least 40 questions in every status a validator gives")
    func matrixIsLargeEnough() {
        let statuses = Set(DNSSECCase.matrix.map(\.expected))
        #expect(DNSSECCase.matrix.count >= 40)
        #expect(statuses == [.secure, .insecure, .bogus])
        let questions = DNSSECCase.matrix.map(\.description)
        #expect(Set(questions).count == questions.count, "a question is listed twice")
    }

    @Test("delv, given the private root's anchor, gives every question its expected status")
    func delvAgreesWithTheExpectations() throws {
        let results = try Shared.delv.get()
        let rows = zip(DNSSECCase.matrix, results).map { MatrixRow(question: $0, delv: $1.status) }
        print("DNSSEC matrix, delv:\n" + MatrixRow.table(rows))
        let wrong = rows.filter { $0.delv != $0.question.expected.rawValue }
        if !wrong.isEmpty {
            let outputs = zip(DNSSECCase.matrix, results).filter { question, result in result.status != question.expected.rawValue }
                .map { "\($0.0): \($0.1.output)" }.joined(separator: "\n")
            let message: String = "delv disagrees with the expectations on \(wrong.count) of \(rows.count) questions:\n"
                + MatrixRow.table(wrong) + "\n\ndelv said:\n" + outputs
            Issue.record(Comment(rawValue: message))
        }
    }

    @Test("vrules dns query --json gives every question the status delv gives")
    func vrulesAgreesWithDelv() throws {
        let hierarchy = try Shared.hierarchy.get()
        let results = try Shared.delv.get()
        let config = hierarchy.directory.appendingPathComponent("vrules.toml")
        try hierarchy.validatingConfiguration.write(to: config, atomically: true, encoding: .utf8)
        var rows: [MatrixRow] = []
        var outputs: [String] = []
        for (question, delv) in zip(DNSSECCase.matrix, results) {
            let vrules = try VrulesQuery.status(of: question, config: config)
            rows.append(MatrixRow(question: question, delv: delv.status, vrules: vrules.status))
            if vrules.status != delv.status || vrules.status != question.expected.rawValue {
                outputs.append(vrules.output)
            }
        }
        print("DNSSEC matrix, delv and vrules:\n" + MatrixRow.table(rows))
        let disagreements = rows.filter { $0.vrules != $0.delv || $0.vrules != $0.question.expected.rawValue }
        if !disagreements.isEmpty {
            let message: String = "vrules disagrees with delv or the expectations on \(disagreements.count) of \(rows.count) questions:\n"
                + MatrixRow.table(disagreements) + "\n\nvrules said (the first 3 distinct outputs):\n"
                + outputs.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }.prefix(3).joined(separator: "\n")
            Issue.record(Comment(rawValue: message))
        }
    }
}
