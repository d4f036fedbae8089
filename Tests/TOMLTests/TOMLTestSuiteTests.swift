import Foundation
import Testing
import TOML

/// The toml-test suite (https://github.com/toml-lang/toml-test) as Debian ships it in
/// `golang-github-burntsushi-toml-dev` (scripts/test.sh installs it): every valid case
/// must parse to the values of its `.json` twin, every invalid case must be refused with
/// a position inside the file.
@Suite("toml-test suite")
struct TOMLTestSuiteTests {
    static let directory = "/usr/share/gocode/src/github.com/BurntSushi/toml/internal/toml-test/tests"

    /// Cases left out, each with its reason.
    static let skipped: [String: String] = [
        "valid/string/escape-esc": "\\e is TOML 1.1; vrules reads TOML 1.0 (toml-test's own 1.0.0 list leaves it out too)",
    ]

    static func cases(_ kind: String) throws -> [String] {
        let root = "\(Self.directory)/\(kind)"
        guard let enumerator = FileManager.default.enumerator(atPath: root) else {
            throw SuiteMissing(path: root)
        }
        var names: [String] = []
        while let relative = enumerator.nextObject() as? String {
            if relative.hasSuffix(".toml") { names.append("\(kind)/\(relative.dropLast(5))") }
        }
        return names.sorted()
    }

    struct SuiteMissing: Error, CustomStringConvertible {
        var path: String
        var description: String { "\(self.path) is missing: install golang-github-burntsushi-toml-dev (scripts/test.sh does)" }
    }

    @Test("valid cases parse to the expected values")
    func valid() throws {
        let names = try Self.cases("valid")
        #expect(names.count >= 90)
        var passed = 0
        var failures: [String] = []
        for name in names {
            if Self.skipped[name] != nil { continue }
            let source = try Data(contentsOf: URL(fileURLWithPath: "\(Self.directory)/\(name).toml"))
            let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Self.directory)/\(name).json")),
                                                            options: [.fragmentsAllowed])
            do {
                let table = try TOML.parse(Array(source))
                if let difference = Self.compare(TOMLValue(.table(table), at: TOMLPosition(line: 1, column: 1)), expected, path: "") {
                    failures.append("\(name): \(difference)")
                } else {
                    passed += 1
                }
            } catch {
                failures.append("\(name): refused: \(error)")
            }
        }
        print("toml-test valid: \(passed) passed, \(failures.count) failed, \(Self.skipped.keys.filter { $0.hasPrefix("valid/") }.count) skipped")
        #expect(failures == [])
    }

    @Test("invalid cases are refused with a line inside the file")
    func invalid() throws {
        let names = try Self.cases("invalid")
        #expect(names.count >= 200)
        var passed = 0
        var failures: [String] = []
        for name in names {
            if Self.skipped[name] != nil { continue }
            let source = Array(try Data(contentsOf: URL(fileURLWithPath: "\(Self.directory)/\(name).toml")))
            let lines = source.filter { $0 == UInt8(ascii: "\n") }.count + 1
            do {
                _ = try TOML.parse(source)
                failures.append("\(name): accepted")
            } catch {
                if (1...lines).contains(error.position.line) && error.position.column >= 1 {
                    passed += 1
                } else {
                    failures.append("\(name): error at \(error.position), outside the file's \(lines) lines")
                }
            }
        }
        print("toml-test invalid: \(passed) refused, \(failures.count) failed, \(Self.skipped.keys.filter { $0.hasPrefix("invalid/") }.count) skipped")
        #expect(failures == [])
    }

    @Test("the comparison itself notices a wrong value, a missing key and a wrong type")
    func comparisonCanFail() throws {
        let value = TOMLValue(.table(try TOML.parse("a = 1\nb = 1979-05-27T07:32:00Z\n")), at: TOMLPosition(line: 1, column: 1))
        let good: [String: Any] = ["a": ["type": "integer", "value": "1"], "b": ["type": "datetime", "value": "1979-05-27t07:32:00+00:00"]]
        #expect(Self.compare(value, good, path: "") == nil)
        #expect(Self.compare(value, ["a": ["type": "integer", "value": "2"], "b": good["b"]!], path: "") != nil)
        #expect(Self.compare(value, ["a": good["a"]!], path: "") != nil)
        #expect(Self.compare(value, ["a": ["type": "float", "value": "1"], "b": good["b"]!], path: "") != nil)
        #expect(Self.compare(value, ["a": good["a"]!, "b": ["type": "datetime", "value": "1979-05-27T07:32:01Z"]], path: "") != nil)
    }

    /// nil when `value` is what toml-test's tagged JSON says, else the first difference.
    static func compare(_ value: TOMLValue, _ expected: Any, path: String) -> String? {
        if let tagged = expected as? [String: Any], tagged.count == 2, let type = tagged["type"] as? String,
           let text = tagged["value"] as? String {
            return Self.compareScalar(value, type: type, text: text, path: path)
        }
        if let object = expected as? [String: Any] {
            guard let table = value.table else { return "\(path): expected a table, found \(value.typeName)" }
            guard Set(table.keys) == Set(object.keys) else {
                return "\(path): keys \(table.keys.sorted()) instead of \(object.keys.sorted())"
            }
            for key in table.keys {
                if let difference = Self.compare(table[key]!, object[key]!, path: path + "." + key) { return difference }
            }
            return nil
        }
        if let array = expected as? [Any] {
            guard let elements = value.array else { return "\(path): expected an array, found \(value.typeName)" }
            guard elements.count == array.count else { return "\(path): \(elements.count) elements instead of \(array.count)" }
            for (index, element) in elements.enumerated() {
                if let difference = Self.compare(element, array[index], path: "\(path)[\(index)]") { return difference }
            }
            return nil
        }
        return "\(path): unexpected JSON \(expected)"
    }

    static func compareScalar(_ value: TOMLValue, type: String, text: String, path: String) -> String? {
        let mismatch = "\(path): \(value.kind) instead of \(type) \(text)"
        switch (type, value.kind) {
        case ("string", .string(let string)):
            return string == text ? nil : mismatch
        case ("integer", .integer(let integer)):
            return String(integer) == text ? nil : mismatch
        case ("bool", .boolean(let flag)):
            return String(flag) == text ? nil : mismatch
        case ("float", .float(let number)):
            if text.hasSuffix("nan") { return number.isNaN ? nil : mismatch }
            let expected: Double?
            switch text {
            case "inf", "+inf": expected = .infinity
            case "-inf": expected = -.infinity
            default: expected = Double(text)
            }
            return expected == number ? nil : mismatch
        case (_, .dateTime(let dateTime)):
            let kind = dateTime.offsetMinutes != nil ? "datetime"
                : dateTime.date != nil && dateTime.time != nil ? "datetime-local"
                : dateTime.date != nil ? "date-local" : "time-local"
            guard kind == type else { return mismatch }
            return dateTime.description == Self.normalizedDateTime(text) ? nil : "\(path): \(dateTime) instead of \(text)"
        default:
            return mismatch
        }
    }

    /// RFC 3339 text as `TOMLDateTime.description` writes it: `T` and `Z` upper case,
    /// trailing zeros of the fraction dropped, a zero offset as `Z`.
    static func normalizedDateTime(_ text: String) -> String {
        var result = text.uppercased().replacingOccurrences(of: " ", with: "T")
        for zero in ["+00:00", "-00:00"] where result.hasSuffix(zero) { result = String(result.dropLast(6)) + "Z" }
        guard let dot = result.firstIndex(of: ".") else { return result }
        let fractionEnd = result[dot...].dropFirst().firstIndex { !$0.isNumber } ?? result.endIndex
        var fraction = String(result[result.index(after: dot)..<fractionEnd])
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return String(result[..<dot]) + (fraction.isEmpty ? "" : "." + fraction) + String(result[fractionEnd...])
    }
}
