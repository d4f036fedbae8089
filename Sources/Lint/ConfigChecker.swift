import DNSResolver
import Spelling
import Foundation
import TOMLKit

extension Linter {
    /// The configuration diagnostics alone: what `vrules serve` and `vrules run` check
    /// before they use a `vrules.toml`, so they refuse exactly what `vrules check` flags.
    public static func checkConfiguration(path: String) -> [Diagnostic] {
        ConfigChecker(path: path).check().sorted()
    }
}

/// Checks `vrules.toml`: TOML syntax, the tables and keys vrules knows, their types,
/// durations and enum values. The DNS subtrees (`[server.dns]`, `[server.virtual.*.dns]`)
/// are judged by `DNSConfiguration` itself, the loader the server uses, so the linter and
/// the server can never disagree about them.
struct ConfigChecker {
    let path: String

    /// A TOML key path with what may be under it.
    private indirect enum Schema {
        /// A table with these keys (nil: the key is checked elsewhere).
        case table([String: Schema])
        /// A table whose keys are names chosen by the operator (virtual domains).
        case map(Schema)
        /// Checked by `DNSConfiguration`.
        case dns
        case stringArray
        case positiveInteger
        case byteSize
        case duration
        /// `DUNNO` or a reply `4NN x.y.z text` / `5NN x.y.z text` (`[policy] unknown_state_action`).
        case policyAction
        /// Octal permission bits as a string, e.g. `"0660"`.
        case fileMode
        case string
    }

    private static let schema: Schema = .table([
        "server": .table([
            "dns": .dns,
            "virtual": .map(.table(["dns": .dns])),
        ]),
        "policy": .table([
            "listen": .stringArray,
            "max_connections": .positiveInteger,
            "max_recipients": .positiveInteger,
            "unknown_state_action": .policyAction,
            "socket_mode": .fileMode,
            "socket_group": .string,
        ]),
        "limits": .table([
            "instructions": .positiveInteger,
            "memory": .byteSize,
            "stage_timeout": .duration,
        ]),
    ])

    func check() -> [Diagnostic] {
        guard let text = try? String(contentsOfFile: self.path, encoding: .utf8) else {
            return [Diagnostic(path: self.path, line: 1, column: 1, severity: .error, message: "cannot read file",
                               code: DiagnosticCode.unreadable)]
        }
        return self.check(text: text)
    }

    func check(text: String) -> [Diagnostic] {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            return [Diagnostic(path: self.path, line: max(1, error.source.begin.line), column: max(1, error.source.begin.column),
                               severity: .error, message: "TOML syntax error: \(error.description)", code: DiagnosticCode.configSyntax)]
        } catch {
            return [Diagnostic(path: self.path, line: 1, column: 1, severity: .error, message: "TOML syntax error: \(error)",
                               code: DiagnosticCode.configSyntax)]
        }
        let locator = TOMLKeyLocator(text: text)
        var diagnostics: [Diagnostic] = []
        var hasDNS = false
        self.walk(root, schema: Self.schema, path: [], locator: locator, hasDNS: &hasDNS, into: &diagnostics)

        if hasDNS {
            do {
                _ = try DNSConfiguration.parse(table: root, file: self.path)
            } catch {
                let hint = error.suggestion.map { " (did you mean '\($0)'?)" } ?? ""
                let position = locator.position(of: TOMLKeyLocator.components(of: error.keyPath))
                let code: String
                if error.message.hasPrefix("unknown key") {
                    code = DiagnosticCode.configUnknownKey
                } else if error.message.hasPrefix("expected") {
                    code = DiagnosticCode.configType
                } else {
                    code = DiagnosticCode.configValue
                }
                let file = error.file == self.path ? self.path : error.file
                diagnostics.append(Diagnostic(path: file == self.path ? self.path : file, line: position.line,
                                              column: position.column, severity: .error,
                                              message: "\(error.keyPath): \(error.message)\(hint)", code: code))
            }
        }
        return diagnostics
    }

    private func walk(_ value: any TOMLValueConvertible, schema: Schema, path: [String], locator: TOMLKeyLocator,
                      hasDNS: inout Bool, into diagnostics: inout [Diagnostic]) {
        func report(_ message: String, _ code: String, at keyPath: [String]? = nil) {
            let keys = keyPath ?? path
            let position = locator.position(of: keys)
            diagnostics.append(Diagnostic(path: self.path, line: position.line, column: position.column, severity: .error,
                                          message: "\(TOMLKeyLocator.render(keys)): \(message)", code: code))
        }
        switch schema {
        case .dns:
            hasDNS = true
        case .table(let keys):
            guard let table = value.table else {
                report("expected a table, found \(DNSConfiguration.typeName(value))", DiagnosticCode.configType)
                return
            }
            for key in table.keys.sorted() {
                guard let child = keys[key], let childValue = table[key] else {
                    let hint = Spelling.hint(for: key, in: keys.keys)
                    report("unknown key\(hint)", DiagnosticCode.configUnknownKey, at: path + [key])
                    continue
                }
                self.walk(childValue, schema: child, path: path + [key], locator: locator, hasDNS: &hasDNS, into: &diagnostics)
            }
        case .map(let element):
            guard let table = value.table else {
                report("expected a table, found \(DNSConfiguration.typeName(value))", DiagnosticCode.configType)
                return
            }
            for key in table.keys.sorted() {
                guard let childValue = table[key] else { continue }
                self.walk(childValue, schema: element, path: path + [key], locator: locator, hasDNS: &hasDNS, into: &diagnostics)
            }
        case .stringArray:
            guard let array = value.array else {
                report("expected an array of strings, found \(DNSConfiguration.typeName(value))", DiagnosticCode.configType)
                return
            }
            for (index, element) in array.enumerated() where element.string == nil {
                report("element \(index + 1) is \(DNSConfiguration.typeName(element)), expected a string", DiagnosticCode.configType)
            }
        case .positiveInteger:
            guard value.type == .int, let number = value.int else {
                report("expected an integer, found \(DNSConfiguration.typeName(value))", DiagnosticCode.configType)
                return
            }
            if number <= 0 { report("must be positive, got \(number)", DiagnosticCode.configValue) }
        case .byteSize:
            if value.type == .int, let number = value.int {
                if number <= 0 { report("must be positive, got \(number)", DiagnosticCode.configValue) }
            } else if let text = value.string {
                if ByteSizeText.parse(text) == nil {
                    report("invalid size '\(text)' (use a whole number of bytes, or a number followed by KiB, MiB or GiB)",
                           DiagnosticCode.configValue)
                }
            } else {
                report("expected a size such as \"64MiB\" or a number of bytes, found \(DNSConfiguration.typeName(value))",
                       DiagnosticCode.configType)
            }
        case .duration:
            if value.type == .int, let seconds = value.int {
                if seconds <= 0 { report("must be positive, got \(seconds)", DiagnosticCode.configValue) }
            } else if let text = value.string {
                if !Self.isDuration(text) {
                    report("invalid duration '\(text)' (use a whole number followed by ms, s or m, e.g. \"60s\")",
                           DiagnosticCode.configValue)
                }
            } else {
                report("expected a duration such as \"500ms\" or \"5s\", found \(DNSConfiguration.typeName(value))", DiagnosticCode.configType)
            }
        case .fileMode:
            guard let text = value.string else {
                report("expected a string such as \"0660\", found \(DNSConfiguration.typeName(value))", DiagnosticCode.configType)
                return
            }
            let digits = text.allSatisfy { ("0"..."7").contains($0) }
            if text.isEmpty || text.count > 4 || !digits || (Int(text, radix: 8) ?? 0o1000) > 0o777 {
                report("invalid mode '\(text)' (use octal permission bits such as \"0660\")", DiagnosticCode.configValue)
            }
        case .string:
            if value.string == nil {
                report("expected a string, found \(DNSConfiguration.typeName(value))", DiagnosticCode.configType)
            }
        case .policyAction:
            guard let text = value.string else {
                report("expected a string, found \(DNSConfiguration.typeName(value))", DiagnosticCode.configType)
                return
            }
            if !Self.isPolicyAction(text) {
                report("invalid action '\(text)' (use DUNNO or a reply such as \"451 4.3.0 text\")", DiagnosticCode.configValue)
            }
        }
    }

    /// `DUNNO`, or a reply whose enhanced code has the reply's class, in printable ASCII.
    static func isPolicyAction(_ text: String) -> Bool {
        if text == "DUNNO" { return true }
        let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].isEmpty, text.unicodeScalars.allSatisfy({ (0x20..<0x7F).contains($0.value) }),
              parts[0].count == 3, let code = Int(parts[0]), (400...599).contains(code) else { return false }
        let enhanced = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        return enhanced.count == 3 && enhanced[0] == parts[0].prefix(1)
            && enhanced.dropFirst().allSatisfy { (1...3).contains($0.count) && $0.allSatisfy { $0.isASCII && $0.isNumber } }
    }

    /// The duration syntax of the DNS options (`DurationText`): digits then ms, s or m.
    static func isDuration(_ text: String) -> Bool {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let number = Int(digits), number > 0 else { return false }
        return ["ms", "s", "m"].contains(String(text.dropFirst(digits.count)))
    }
}

/// `"64MiB"`, `"512KiB"`, `"1GiB"` (also K, M, G), or plain digits meaning bytes.
/// Sizes in the configuration: bytes, or a number followed by K/KiB, M/MiB, G/GiB.
public enum ByteSizeText {
    public static func parse(_ text: String) -> Int? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let number = Int(digits), number > 0 else { return nil }
        let scales: [String: Int] = ["": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20, "G": 1 << 30, "GiB": 1 << 30]
        guard let scale = scales[String(text.dropFirst(digits.count))] else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: scale)
        return overflow ? nil : product
    }
}

/// Where keys are in a TOML file, found by reading its lines: TOMLKit does not keep
/// positions of values. Table headers (`[a."b.c".d]`) set the current table; `key = value`
/// lines (dotted keys too) define keys under it.
struct TOMLKeyLocator {
    private var positions: [[String]: (line: Int, column: Int)] = [:]

    init(text: String) {
        var current: [String] = []
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = offset + 1
            let indent = rawLine.prefix { $0 == " " || $0 == "\t" }.count
            let content = rawLine.dropFirst(indent)
            if content.hasPrefix("[") {
                let isArray = content.hasPrefix("[[")
                let inner = content.dropFirst(isArray ? 2 : 1)
                guard let close = inner.firstIndex(of: "]") else { continue }
                current = Self.components(of: String(inner[..<close]))
                let column = indent + (isArray ? 3 : 2)
                for length in 1...max(1, current.count) where self.positions[Array(current.prefix(length))] == nil {
                    self.positions[Array(current.prefix(length))] = (line, column)
                }
            } else if let equals = Self.assignment(in: content) {
                let keys = Self.components(of: String(content[..<equals]))
                guard !keys.isEmpty else { continue }
                let full = current + keys
                for length in (current.count + 1)...full.count where self.positions[Array(full.prefix(length))] == nil {
                    self.positions[Array(full.prefix(length))] = (line, indent + 1)
                }
            }
        }
    }

    /// The `=` of a `key = value` line, outside quotes.
    private static func assignment(in line: Substring) -> Substring.Index? {
        guard let first = line.first, first != "#" else { return nil }
        var quote: Character?
        for index in line.indices {
            let character = line[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "=" {
                return index
            }
        }
        return nil
    }

    /// The position of the deepest known prefix of `keys` (line 1 when nothing matches).
    func position(of keys: [String]) -> (line: Int, column: Int) {
        var length = keys.count
        while length > 0 {
            if let position = self.positions[Array(keys.prefix(length))] { return position }
            length -= 1
        }
        return (1, 1)
    }

    /// `server.virtual."example.com".dns.servers[0]` → ["server", "virtual", "example.com", "dns", "servers"].
    static func components(of path: String) -> [String] {
        var components: [String] = []
        var current = ""
        var quote: Character?
        var inIndex = false
        for character in path {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "[" {
                inIndex = true
            } else if character == "]" {
                inIndex = false
            } else if inIndex {
                continue
            } else if character == "." {
                components.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(character)
            }
        }
        let last = current.trimmingCharacters(in: .whitespaces)
        if !last.isEmpty || !components.isEmpty { components.append(last) }
        return components.filter { !$0.isEmpty }
    }

    /// Keys joined back into a path, quoting the ones that need it.
    static func render(_ keys: [String]) -> String {
        keys.map { key in
            key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") } ? key : "\"\(key)\""
        }.joined(separator: ".")
    }
}
