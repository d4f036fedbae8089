import Configuration

/// Reports what the configuration loader finds in `vrules.toml`. The linter has no
/// configuration rules of its own: syntax, keys, types, durations, sizes and enum values
/// are judged by `VrulesConfiguration`, the loader `run`, `serve`, `dns` and `test` use,
/// so `vrules check` and the commands can never disagree about a file.
struct ConfigChecker {
    let path: String

    func check() -> [Diagnostic] {
        VrulesConfiguration.check(path: self.path).errors.map(Diagnostic.init(configurationError:))
    }
}

extension Diagnostic {
    /// The same text the commands print when they refuse the file.
    init(configurationError error: ConfigurationError) {
        self.init(path: error.file, line: error.position.line, column: error.position.column, severity: .error,
                  message: error.text, code: error.kind.rawValue)
    }
}
