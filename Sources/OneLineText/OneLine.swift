/// Text made safe to print as one line of a report (`vrules test`'s results, `vrules check`'s
/// diagnostics): names, keys and string constants of scripts and test files, a rule's log
/// lines and what DNS returned can hold newlines, terminal escape sequences or bidirectional
/// overrides, which printed raw would forge `ok - ` or `path:line:col:` lines or repaint a
/// terminal, and which XML 1.0 cannot hold at all (not even as a character reference), so a
/// JUnit report with one is refused whole.
public enum OneLine {
    /// `text` with each scalar `mustEscape` names, tab apart, written as a Lua escape (`\n`,
    /// `\r`, `\u{1B}`), which a test file can use to write the same string.
    public static func escaped(_ text: String) -> String {
        guard !Self.isOneLine(text) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case _ where scalar != "\t" && Self.mustEscape(scalar): result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// `json` (a JSON text whose structure is ASCII, as `JSONSerialization` writes it) with
    /// each scalar `mustEscape` names written as a JSON escape (`\u202E`): JSON lets C1
    /// controls, bidirectional controls and line separators stand raw in a string, and
    /// `escaped` would write them in Lua's syntax, which a JSON reader refuses.
    public static func jsonEscaped(_ json: String) -> String {
        guard !Self.isOneLine(json) else { return json }
        var result = ""
        for scalar in json.unicodeScalars {
            guard Self.mustEscape(scalar) else {
                result.unicodeScalars.append(scalar)
                continue
            }
            for unit in String(scalar).utf16 {
                let hex = String(unit, radix: 16, uppercase: true)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        return result
    }

    /// True when `escaped` would return `text` as it is.
    public static func isOneLine(_ text: String) -> Bool {
        !text.unicodeScalars.contains { $0 != "\t" && Self.mustEscape($0) }
    }

    /// Whether `scalar` is unsafe to print raw inside one line: a control character (C0, DEL,
    /// C1; tab too, which a caller may let through), a bidirectional control, a line or
    /// paragraph separator, a byte-order mark, or a noncharacter U+FFFE/U+FFFF. The one list,
    /// shared by every message that echoes text from outside (`TOMLText` too).
    public static func mustEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x061C, 0x200E, 0x200F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: return true
        case 0xFEFF, 0xFFFE, 0xFFFF: return true
        default: return false
        }
    }
}
