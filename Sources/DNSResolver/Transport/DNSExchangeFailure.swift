import DNS

/// Why one exchange with one server produced no usable answer. Mapped to `DNSError` once
/// a whole lookup has failed; ranked so that a pass reports its most telling failure.
enum DNSExchangeFailure: Error, Hashable, Sendable {
    case timeout
    case servfail(String)
    case refused(String)
    case formerr(String)
    case bogus(String)
    case network(String)
    case cancelled

    /// Higher is more informative: a SERVFAIL from one server says more than a timeout from another.
    var rank: Int {
        switch self {
        case .cancelled: return 0
        case .timeout: return 1
        case .network: return 2
        case .formerr: return 3
        case .refused: return 4
        case .servfail: return 5
        case .bogus: return 6
        }
    }

    func dnsError(for question: DNSQuestion) -> DNSError {
        switch self {
        case .timeout, .cancelled:
            return DNSError(kind: .timeout, name: question.name, type: question.type, detail: "no answer in time")
        case .servfail(let detail):
            return DNSError(kind: .servfail, name: question.name, type: question.type, detail: detail)
        case .refused(let detail):
            return DNSError(kind: .refused, name: question.name, type: question.type, detail: detail)
        case .formerr(let detail):
            return DNSError(kind: .formerr, name: question.name, type: question.type, detail: detail)
        case .bogus(let detail):
            return DNSError(kind: .bogus, name: question.name, type: question.type, detail: detail)
        case .network(let detail):
            return DNSError(kind: .network, name: question.name, type: question.type, detail: detail)
        }
    }
}
