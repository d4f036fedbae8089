extension DNSAnswer {
    /// The transient error an answer stands for when DNSSEC validation failed (`bogus`) or
    /// could not finish (`indeterminate`): such an answer must not decide anything, so a
    /// rule sees it as a DNS error (kind `bogus`, or `servfail` when the chain of trust
    /// could not be fetched), which ends an uncaught rule in 451 4.4.3. Nil otherwise.
    public var validationFailure: DNSError? {
        switch self.security.status {
        case .secure, .insecure:
            return nil
        case .bogus:
            return DNSError(kind: .bogus, name: self.name, type: self.type,
                            detail: self.security.reason ?? "DNSSEC validation failed", security: self.security)
        case .indeterminate:
            return DNSError(kind: .servfail, name: self.name, type: self.type,
                            detail: "DNSSEC status indeterminate" + (self.security.reason.map { ": \($0)" } ?? ""),
                            security: self.security)
        }
    }
}

extension Result where Success == DNSAnswer, Failure == DNSError {
    /// The result as rules see it: an answer that failed validation becomes its error.
    public var failingUnvalidatedAnswers: DNSQueryResult {
        if case .success(let answer) = self, let failure = answer.validationFailure { return .failure(failure) }
        return self
    }
}
