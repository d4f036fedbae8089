import Foundation
import VrulesTestSupport

/// `vrules dns query NAME TYPE --json --config FILE` through the built binary: the status
/// a user sees, read from the JSON's `result.security`.
enum VrulesQuery {
    static func status(of question: DNSSECCase, config: URL) throws -> (status: String, output: String) {
        let run = try CLI.run(["dns", "query", question.name, question.type, "--json", "--config", config.path])
        let text = run.stdout + run.stderr
        guard let data = run.stdout.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return ("(no JSON)", text)
        }
        guard let result = object["result"] as? [String: Any], let security = result["security"] as? String else {
            return ("(no result.security)", text)
        }
        return (security, text)
    }
}
