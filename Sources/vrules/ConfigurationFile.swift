import Foundation
import Lint
import Rules
import TOMLKit

/// The parts of `vrules.toml` the commands use besides DNS: `[policy] listen` and
/// `[limits]`. The file is validated by the linter's own configuration check first, so a
/// value the server refuses is exactly one `vrules check` reports.
struct ConfigurationFile {
    var listen: [String] = []
    var limits = RuleLimits()
    var maximumConnections: Int?
    var maximumRecipients: Int?
    var unknownStateAction: String?
    var socketMode: String?
    var socketGroup: String?

    /// Reads `path`; a missing default file gives the defaults.
    static func load(path: String, isDefault: Bool) throws -> ConfigurationFile {
        guard FileManager.default.fileExists(atPath: path) else {
            if isDefault { return ConfigurationFile() }
            throw UsageFailure("\(path): no such configuration file")
        }
        let errors = Linter.checkConfiguration(path: path).filter { $0.severity == .error }
        guard errors.isEmpty else {
            throw UsageFailure(errors.map(\.description).joined(separator: "\n"))
        }
        let table = try TOMLTable(string: try String(contentsOfFile: path, encoding: .utf8))
        var file = ConfigurationFile()
        if let listen = table["policy"]?.table?["listen"]?.array {
            file.listen = listen.compactMap(\.string)
        }
        if let policy = table["policy"]?.table {
            file.maximumConnections = policy["max_connections"]?.int
            file.maximumRecipients = policy["max_recipients"]?.int
            file.unknownStateAction = policy["unknown_state_action"]?.string
            file.socketMode = policy["socket_mode"]?.string
            file.socketGroup = policy["socket_group"]?.string
        }
        if let limits = table["limits"]?.table {
            if let instructions = limits["instructions"]?.int { file.limits.instructionsPerStage = Int64(instructions) }
            if let memory = limits["memory"] {
                if let bytes = memory.int { file.limits.memoryBytes = bytes }
                if let text = memory.string, let bytes = ByteSizeText.parse(text) { file.limits.memoryBytes = bytes }
            }
            if let timeout = limits["stage_timeout"] {
                if let seconds = timeout.int { file.limits.stageTimeout = Double(seconds) }
                if let text = timeout.string, let duration = ResolverOptions.parseDuration(text) {
                    file.limits.stageTimeout = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
                }
            }
        }
        return file
    }
}
