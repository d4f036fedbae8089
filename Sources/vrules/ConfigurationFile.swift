import Configuration
import DNSResolver
import Policy
import Rules

/// `vrules.toml` as the commands use it: loaded and validated by `VrulesConfiguration`
/// (the loader `vrules check` reports from), with `[limits]` turned into the engine's
/// `RuleLimits`. A file with mistakes is refused with the lines `vrules check` prints.
struct ConfigurationFile {
    var configuration: VrulesConfiguration
    var limits = RuleLimits()

    var listen: [String] { self.configuration.listen }
    var maximumConnections: Int? { self.configuration.policy.maximumConnections }
    var maximumRecipients: Int? { self.configuration.policy.maximumRecipients }
    var unknownStateAction: String? { self.configuration.policy.unknownStateAction }
    var socketMode: String? { self.configuration.policy.socketMode }
    var socketGroup: String? { self.configuration.policy.socketGroup }
    var dryRun: Bool { self.configuration.policy.dryRun ?? false }
    var dns: DNSConfiguration { self.configuration.dns }

    /// The `[policy]` settings `vrules serve` applies when it starts only (its listeners and
    /// their connection cap), each with its value as the file gives it; a reload compares them
    /// to say which changes wait for the next start.
    var settingsFixedAtStart: [(key: String, value: String)] {
        let policy = self.configuration.policy
        func text<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "(not set)" }
        return [
            ("policy.listen", self.listen.isEmpty ? "(not set)" : self.listen.joined(separator: ", ")),
            ("policy.max_connections", text(policy.maximumConnections)),
            ("policy.socket_mode", text(policy.socketMode)),
            ("policy.socket_group", text(policy.socketGroup)),
        ]
    }

    /// How `vrules serve` (and `vrules answer`, which answers as it does) answers requests:
    /// the `[policy]` settings, with held transactions given a quarter of the rules' memory.
    func policyService(acceptAction: String, dryRun: Bool) -> PolicyService.Configuration {
        var service = PolicyService.Configuration(acceptAction: acceptAction,
                                                  transactionMemory: RecipientLimit.transactionMemory(stateMemory: self.limits.memoryBytes))
        if let recipients = self.maximumRecipients { service.maximumRecipients = recipients }
        if let action = self.unknownStateAction { service.unknownStateAction = action }
        service.dryRun = dryRun
        return service
    }

    /// Reads `path`; a missing default file gives the defaults (the system resolver).
    static func load(path: String, isDefault: Bool) throws -> ConfigurationFile {
        let configuration: VrulesConfiguration
        do {
            configuration = try VrulesConfiguration.load(path: path, ifMissing: isDefault ? .systemDefaults : .error)
        } catch {
            throw UsageFailure(error.description)
        }
        var file = ConfigurationFile(configuration: configuration)
        let limits = configuration.limits
        if let instructions = limits.instructionsPerStage { file.limits.instructionsPerStage = instructions }
        if let memory = limits.memoryBytes { file.limits.memoryBytes = memory }
        if let lines = limits.logLinesPerStage { file.limits.logLinesPerStage = lines }
        if let calls = limits.dnsCallsPerStage { file.limits.dnsCallsPerStage = calls }
        if let timeout = limits.stageTimeout {
            file.limits.stageTimeout = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        }
        return file
    }
}
