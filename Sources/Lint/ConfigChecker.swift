import Configuration

/// Reports what the configuration loader finds in `vrules.toml`. The linter has no
/// configuration rules of its own: syntax, keys, types, durations, sizes and enum values
/// are judged by `VrulesConfiguration`, the loader `run`, `serve`, `dns` and `test` use,
/// so `vrules check` and the commands can never disagree about a file.
/// Each file is read and judged once; the script checks and the blocklist warnings use the
/// configuration it gives.
struct ConfigChecker {
    let path: String
    let diagnostics: [Diagnostic]
    /// Nil when the file has errors.
    let configuration: VrulesConfiguration?

    init(path: String) {
        let (configuration, errors) = VrulesConfiguration.check(path: path)
        self.path = path
        self.diagnostics = errors.map(Diagnostic.init(configurationError:))
        self.configuration = configuration
    }
}

extension Diagnostic {
    /// The same text the commands print when they refuse the file.
    init(configurationError error: ConfigurationError) {
        self.init(path: error.file, line: error.position.line, column: error.position.column, severity: .error,
                  message: error.text, code: error.kind.rawValue)
    }
}
