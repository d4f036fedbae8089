import DNS
import Configuration
import DNSResolver
import Foundation
import ListenAddress
import OneLineText
import Rules

/// What `vrules check` was asked to look at.
public struct LintRequest: Sendable {
    /// Files or directories. Empty: `rules/main.lua` and the tests beside it.
    public var paths: [String]
    /// The configuration file, or nil for `vrules.toml` when it exists.
    public var configPath: String?

    public init(paths: [String] = [], configPath: String? = nil) {
        self.paths = paths
        self.configPath = configPath
    }
}

/// A request that names something that is not there (exit status 2, like a usage error).
public struct LintUsageError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Runs every check of `vrules check` and returns the diagnostics, sorted.
///
/// Which file is what: a `.toml` path is a configuration; `*_test.lua` is a test file; any
/// other `.lua` file given by name is a rule script. In a directory, the `.lua` files at its
/// top are rule scripts, files below it are modules (checked through the `require`s that
/// reach them, or on their own when nothing requires them), and `*_test.lua` files at any
/// depth are test files.
public struct Linter: Sendable {
    public static let defaultRules = "rules/main.lua"
    public static let defaultConfig = "vrules.toml"

    public init() {}

    public func run(_ request: LintRequest) throws(LintUsageError) -> [Diagnostic] {
        let manager = FileManager.default
        var configs: [String] = []
        var scripts: [String] = []
        var modules: [String] = []
        var tests: [String] = []

        if let config = request.configPath {
            guard manager.fileExists(atPath: config) else { throw LintUsageError(description: "\(config): no such file") }
            configs.append(config)
        } else if manager.fileExists(atPath: Self.defaultConfig) {
            configs.append(Self.defaultConfig)
        }

        if request.paths.isEmpty {
            guard manager.fileExists(atPath: Self.defaultRules) else {
                throw LintUsageError(description: "\(Self.defaultRules): no such file (give the rule scripts to check)")
            }
            scripts.append(Self.defaultRules)
            let testDirectory = (Self.defaultRules as NSString).deletingLastPathComponent + "/tests"
            tests += Self.luaFiles(under: testDirectory).filter(Self.isTestFile)
        }
        for path in request.paths {
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw LintUsageError(description: "\(path): no such file or directory")
            }
            if isDirectory.boolValue {
                let base = path.hasSuffix("/") ? String(path.dropLast()) : path
                for file in Self.luaFiles(under: base) {
                    if Self.isTestFile(file) {
                        tests.append(file)
                    } else if (file as NSString).deletingLastPathComponent == base {
                        scripts.append(file)
                    } else {
                        modules.append(file)
                    }
                }
                if request.configPath == nil, manager.fileExists(atPath: base + "/" + Self.defaultConfig) {
                    configs.append(base + "/" + Self.defaultConfig)
                }
            } else if path.hasSuffix(".toml") {
                configs.append(path)
            } else if Self.isTestFile(path) {
                tests.append(path)
            } else {
                scripts.append(path)
            }
        }

        var diagnostics: [Diagnostic] = []
        let checkedConfigs = Self.unique(configs).map(ConfigChecker.init(path:))
        for config in checkedConfigs { diagnostics += config.diagnostics }
        // A file another script requires is a module, even when it was named on its own.
        var required = Set<String>()
        for script in Self.unique(scripts) { required.formUnion(ScriptChecker.requiredModules(of: script)) }
        let entries = Self.unique(scripts).filter { !required.contains(ScriptChecker.canonical($0)) }
        modules += Self.unique(scripts).filter { required.contains(ScriptChecker.canonical($0)) }
        let checker = ScriptChecker(api: .current, limits: Self.loadLimits(configs: checkedConfigs))
        for script in entries { checker.checkRuleScript(path: script) }
        for module in Self.unique(modules) { checker.checkModule(path: module) }
        for test in Self.unique(tests) { checker.checkTestFile(path: test) }
        diagnostics += checker.diagnostics
        diagnostics += Self.publicResolverWarnings(zones: checker.dnsblZones, configs: checkedConfigs)
        diagnostics += Self.socketGroupWarnings(configs: checkedConfigs)
        return Array(Set(diagnostics)).sorted()
    }

    /// `[policy] socket_group` naming a group this machine does not have: `vrules serve`
    /// refuses to start here. A warning, not an error: the file may be checked elsewhere
    /// (a CI machine without Postfix) than where it is served.
    static func socketGroupWarnings(configs: [ConfigChecker]) -> [Diagnostic] {
        configs.compactMap { checked in
            guard let group = checked.configuration?.policy.socketGroup, SocketGroup.id(named: group) == nil else { return nil }
            let position = Self.keyPosition("socket_group", in: checked.path)
            return Diagnostic(path: checked.path, line: position.line, column: position.column, severity: .warning,
                              message: "policy.socket_group: no group '\(OneLine.escaped(group))' on this machine: vrules serve here refuses to start",
                              code: DiagnosticCode.unknownSocketGroup)
        }
    }

    /// The first line that sets `key` in a TOML file (line 1 when none does plainly).
    static func keyPosition(_ key: String, in path: String) -> (line: Int, column: Int) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return (1, 1) }
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.hasPrefix(key), trimmed.dropFirst(key.count).drop(while: { $0 == " " || $0 == "\t" }).hasPrefix("=") {
                return (index + 1, line.count - trimmed.count + 1)
            }
        }
        return (1, 1)
    }

    /// The limits a script loads under in `vrules serve`: the smallest `[limits] memory` of
    /// the configurations checked, else the default.
    static func loadLimits(configs: [ConfigChecker]) -> RuleLimits {
        var limits = RuleLimits()
        let capped = configs.compactMap { $0.configuration?.limits.memoryBytes }
        if let smallest = capped.min() { limits.memoryBytes = smallest }
        return limits
    }

    /// Spamhaus and other lists refuse queries that come through public resolvers (they
    /// answer with error codes: `dns.dnsbl` says `refused`): a blocklist zone the scripts or
    /// `[dnsbl]` name that would be asked through `google` or `cloudflare` is a warning.
    static func publicResolverWarnings(zones: [(zone: String, path: String, line: Int)], configs: [ConfigChecker]) -> [Diagnostic] {
        var warnings: [Diagnostic] = []
        for checked in configs {
            guard let configuration = checked.configuration else { continue }
            let config = checked.path
            var named = zones.map { (zone: $0.zone, path: $0.path, line: $0.line) }
            named += configuration.dnsbl.zones.keys.sorted().map { (zone: $0, path: config, line: 1) }
            for (zone, path, line) in named {
                guard let normalized = try? DNSName.normalize(zone) else { continue }
                let routed = ZoneRoute.resolver(for: normalized, in: configuration.dns)
                guard routed.type == .google || routed.type == .cloudflare else { continue }
                warnings.append(Diagnostic(
                    path: path, line: line, column: 1, severity: .warning,
                    message: "blocklist zone '\(normalized)' would be asked through \(routed.type.rawValue): lists refuse public resolvers (dns.dnsbl answers refused); route it to a local resolver with [server.dns.zones.\"\(normalized)\"] in \(config)",
                    code: DiagnosticCode.dnsblPublicResolver))
            }
        }
        return warnings
    }

    static func isTestFile(_ path: String) -> Bool { path.hasSuffix("_test.lua") }

    /// `.lua` files under `directory`, sorted, as `directory/relative/path.lua`.
    static func luaFiles(under directory: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            if relative.hasSuffix(".lua") { files.append(directory + "/" + relative) }
        }
        return files.sorted()
    }

    private static func unique(_ paths: [String]) -> [String] {
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }
}

/// Which resolver a name is asked through under `[server.dns.zones]`: the longest zone that
/// is the name or a parent of it, else the root resolver.
enum ZoneRoute {
    static func resolver(for name: String, in configuration: DNSConfiguration) -> DNSConfiguration.Resolver {
        DNSName.selfAndAncestors(name).lazy.compactMap { configuration.zones[String($0)] }.first ?? configuration.root
    }
}
