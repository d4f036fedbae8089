import Foundation
import Rules

/// The answer to one request: the action line and what led to it.
public struct PolicyDecision: Sendable {
    /// `DUNNO`, `OK`, or `4NN x.y.z text` / `5NN x.y.z text`.
    public var action: String
    public var stage: Stage?
    public var result: StageResult?
    /// True when the answer came from a stage evaluated for an earlier identical request.
    public var reused: Bool

    public static let dunno = PolicyDecision(action: "DUNNO", stage: nil, result: nil, reused: false)
}

extension PolicyDecision {
    /// next and accept pass the request on to Postfix's other restrictions (DUNNO) unless
    /// the server is configured to answer accept with OK; defer and reject carry their reply.
    static func action(for result: StageResult, acceptAction: String) -> String {
        switch result.verdict.kind {
        case .next: return "DUNNO"
        case .accept: return acceptAction
        case .defer_, .reject:
            let reply = result.reply
            return "\(reply.code) \(reply.enhanced) \(reply.text)".trimmingCharacters(in: .whitespaces)
        }
    }
}
