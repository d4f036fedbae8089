import Logging

extension Logger {
    /// Warnings and errors only. These tests send tens of thousands of requests, some with
    /// 3,000-character addresses: a line per decision came to over 70 MB of test output.
    static let policyTests: Logger = {
        var logger = Logger(label: "vrules.policy")
        logger.logLevel = .warning
        return logger
    }()
}
