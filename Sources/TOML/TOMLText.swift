import OneLineText

/// Text from a document made safe to print inside a one-line message: a key or value may
/// hold newlines, terminal escape sequences or bidirectional overrides, and an error that
/// echoed them raw would forge extra `path:line:col:` lines for CI or repaint a terminal.
public enum TOMLText {
    /// `text` with control characters, bidirectional controls, backslashes and double quotes
    /// escaped as in a TOML basic string, cut to `limit` characters with "…".
    public static func escaped(_ text: String, limit: Int = 80) -> String {
        var result = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= limit {
                result += "…"
                break
            }
            count += 1
            switch scalar {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                if OneLine.mustEscape(scalar) {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    result += scalar.value > 0xFFFF ? "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
                        : "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }

    /// A key as TOML writes it: bare when it can be, else quoted and escaped.
    public static func key(_ key: String) -> String {
        let bare = !key.isEmpty && key.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        return bare ? key : "\"\(Self.escaped(key))\""
    }
}
