import Foundation
import OneLineText

/// JUnit XML for CI systems: one testsuite per test file, one testcase per test.
public enum JUnitReport {
    public static func xml(_ results: [RuleTestResult], loadErrors: [RuleTestFileError] = []) -> String {
        var files: [String] = []
        for result in results where !files.contains(result.file) { files.append(result.file) }
        for error in loadErrors where !files.contains(error.path) { files.append(error.path) }
        let failures = results.filter { !$0.passed }.count + loadErrors.count
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\"vrules\" tests=\"\(results.count + loadErrors.count)\" failures=\"\(failures)\">\n"
        for file in files {
            let cases = results.filter { $0.file == file }
            let errors = loadErrors.filter { $0.path == file }
            let time = cases.reduce(0) { $0 + $1.seconds }
            xml += "  <testsuite name=\"\(escape(file))\" tests=\"\(cases.count + errors.count)\" failures=\"\(cases.filter { !$0.passed }.count + errors.count)\" time=\"\(String(format: "%.3f", time))\">\n"
            for result in cases {
                xml += "    <testcase classname=\"\(escape(file))\" name=\"\(escape(result.name))\" time=\"\(String(format: "%.3f", result.seconds))\""
                if result.passed {
                    xml += "/>\n"
                } else {
                    xml += ">\n      <failure message=\"\(escape(result.failures[0]))\">\(result.failures.map(escape).joined(separator: "\n"))</failure>\n    </testcase>\n"
                }
            }
            for error in errors {
                xml += "    <testcase classname=\"\(escape(file))\" name=\"(load)\"><failure message=\"\(escape(error.message))\"/></testcase>\n"
            }
            xml += "  </testsuite>\n"
        }
        return xml + "</testsuites>\n"
    }

    /// `text` on one line (OneLine) as XML attribute or element text.
    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in OneLine.escaped(text).unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
