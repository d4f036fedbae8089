import Logging
import NIOConcurrencyHelpers
import Rules

/// Requests answered one after another by one policy service, as `vrules serve` answers one
/// connection's requests, each with every stage the rules evaluated for it: what `vrules
/// answer` prints and a test of `requests` checks. No server, no socket: the answers are the
/// service's own.
public final class PolicyReplay: Sendable {
    /// One request's answer, and what led to it.
    public struct Answer: Sendable {
        public var decision: PolicyDecision
        /// The action line as it goes to Postfix.
        public var action: String
        /// The stages the rules evaluated for this request, in order (none when its answer
        /// was reused or given without rules).
        public var evaluated: [StageResult]
        /// The transaction's `ctx.vars` after the answer; nil when the request had none
        /// (a `protocol_state` answered without rules).
        public var vars: [String: String]?
    }

    /// Why a request cannot be answered at all: `vrules serve` closes the connection there.
    public struct Unanswerable: Error, Sendable, CustomStringConvertible {
        public var reason: String
        public var description: String { "cannot be answered (\(self.reason)): vrules serve closes the connection there" }
    }

    private let service: PolicyService
    private let evaluated: NIOLockedValueBox<[StageResult]>
    private let vars: NIOLockedValueBox<[String: String]?>

    public init(engine: RuleEngine, configuration: PolicyService.Configuration) {
        let evaluated = NIOLockedValueBox<[StageResult]>([])
        var configuration = configuration
        configuration.stageObserver = { result, _ in evaluated.withLockedValue { $0.append(result) } }
        let vars = NIOLockedValueBox<[String: String]?>(nil)
        configuration.varsObserver = { observed in vars.withLockedValue { $0 = observed } }
        var quiet = Logger(label: "vrules.replay")
        quiet.logLevel = .critical
        self.service = PolicyService(engines: [engine], configuration: configuration, logger: quiet)
        self.evaluated = evaluated
        self.vars = vars
    }

    /// Answers `request` after the ones before it; call one at a time.
    public func answer(_ request: PolicyRequest) async throws(Unanswerable) -> Answer {
        if let error = request.garbled { throw Unanswerable(reason: "\(error)") }
        let decision = await self.service.decide(request)
        let stages = self.evaluated.withLockedValue { results in defer { results.removeAll() }; return results }
        let vars = self.vars.withLockedValue { observed in defer { observed = nil }; return observed }
        return Answer(decision: decision, action: PolicyReplyText.sanitized(decision.action), evaluated: stages, vars: vars)
    }
}
