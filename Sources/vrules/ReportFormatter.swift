import Foundation
import DNS
import OneLineText
import Policy
import Rules

/// How `vrules run` prints a session: a block per stage, then `stage: verdict reply`.
enum ReportFormatter {
    /// One line per item, whatever a rule logged or DNS returned (OneLine).
    static func text(_ report: SessionReport, acceptCarriesHeaders: Bool = true) -> String {
        var out = ""
        func line(_ text: String) { out += OneLine.escaped(text) + "\n" }
        let delivery = report.headerDelivery(acceptCarriesHeaders: acceptCarriesHeaders)
        for step in report.steps {
            let result = step.result
            let header = step.recipient.map { "\(result.stage.rawValue) <\($0.address)>" } ?? result.stage.rawValue
            line("== \(header)")
            for event in result.trace {
                line("  " + Self.describe(event))
            }
            if let failure = result.failure { line("  failure: \(failure)") }
            for header in result.headers {
                line("  header \(header)" + (delivery.reason(for: header).map { " (not on the message: \($0))" } ?? ""))
            }
            line("\(result.stage.rawValue): \(result.verdict.kind.rawValue) \(result.reply)"
                 + (report.dryRun && result.verdict.kind.isFailure ? " (dry run: answered DUNNO)" : ""))
            if let sent = PolicyReplyText.changedLine(for: result.reply), !report.dryRun || !result.verdict.kind.isFailure {
                line("  vrules serve sends it as: \(sent) (\(PolicyReplyText.changeReason))")
            }
        }
        if report.dryRun {
            line(report.stoppedAt.map { "dry run: the session would have ended at \($0.rawValue); it went on" }
                 ?? "dry run: session completed")
            for header in delivery.onMessage { line("\(header)") }
        } else if let stage = report.stoppedAt {
            line("session ended at \(stage.rawValue)")
        } else {
            line("session completed")
            // What the message would carry.
            for header in delivery.onMessage { line("\(header)") }
        }
        return out
    }

    static func describe(_ event: TraceEvent) -> String {
        switch event {
        case .rule(let name, let kind, let decision):
            return "\(kind) \"\(name)\": \(decision)"
        case .dnsCall(let function, let argument, let result):
            return "\(function)(\(argument)) -> \(result)"
        case .dnsQuery(let question, let outcome, let records, _, let security):
            return "  query \(question): \(outcome)\(records > 0 ? " (\(records) records)" : "")"
                + TraceText.security(security, outcome: outcome)
        case .log(let level, let rule, let message):
            return "log.\(level)\(rule.map { " [\($0)]" } ?? ""): \(message)"
        }
    }

    static func json(_ report: SessionReport, acceptCarriesHeaders: Bool = true) -> String {
        var steps: [[String: Any]] = []
        let delivery = report.headerDelivery(acceptCarriesHeaders: acceptCarriesHeaders)
        for step in report.steps {
            let result = step.result
            var object: [String: Any] = [
                "stage": result.stage.rawValue,
                "verdict": result.verdict.kind.rawValue,
                "reply": ["code": result.reply.code, "enhanced": result.reply.enhanced, "text": result.reply.text],
                "trace": result.trace.map(Self.jsonEvent),
            ]
            if let recipient = step.recipient { object["rcpt"] = recipient.address }
            if let rule = result.decidedBy { object["decided_by"] = rule }
            if let sent = PolicyReplyText.changedLine(for: result.reply) { object["reply_sent"] = sent }
            if let failure = result.failure { object["failure"] = failure }
            let onMessage = result.headers.filter { delivery.reason(for: $0) == nil }
            let notOnMessage = result.headers.compactMap { header in
                delivery.reason(for: header).map { ["name": header.name, "value": header.value, "reason": $0] }
            }
            if !onMessage.isEmpty { object["headers"] = onMessage.map { ["name": $0.name, "value": $0.value] } }
            if !notOnMessage.isEmpty { object["headers_not_on_message"] = notOnMessage }
            steps.append(object)
        }
        var root: [String: Any] = ["stages": steps, "outcome": report.outcome,
                                   "accepted_rcpts": report.acceptedRecipients.map(\.address)]
        if let stage = report.stoppedAt { root["stopped_at"] = stage.rawValue }
        if report.dryRun {
            root["dry_run"] = true
            root["message_headers"] = delivery.onMessage.map { ["name": $0.name, "value": $0.value] }
        }
        let data = try! JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func jsonEvent(_ event: TraceEvent) -> [String: Any] {
        switch event {
        case .rule(let name, let kind, let decision):
            return ["event": kind, "name": name, "decision": decision]
        case .dnsCall(let function, let argument, let result):
            return ["event": "dns", "function": function, "argument": argument, "result": result]
        case .dnsQuery(let question, let outcome, let records, _, let security):
            var object: [String: Any] = ["event": "query", "question": question, "outcome": outcome, "records": records,
                                         "security": security?.status.rawValue ?? DNSSecurityStatus.insecure.rawValue]
            if let reason = security?.reason { object["reason"] = reason }
            return object
        case .log(let level, let rule, let message):
            var object: [String: Any] = ["event": "log", "level": level, "message": message]
            if let rule { object["rule"] = rule }
            return object
        }
    }
}
