import Lua

/// The rules a reply must follow, once: `reply()`, reply strings and the verdict
/// constructors in the prelude call it through the host, and `vrules check` applies it to
/// literal replies, so a failing rule and the linter say the same thing.
public enum ReplyValidation {
    /// An argument as the script gave it.
    public enum Argument: Hashable, Sendable {
        case `nil`
        case boolean(Bool)
        case integer(Int64)
        case float(Double)
        case string(String)
        /// Any other Lua value, by type name.
        case other(String)

        public var typeName: String {
            switch self {
            case .nil: return "nil"
            case .boolean: return "boolean"
            case .integer, .float: return "number"
            case .string: return "string"
            case .other(let name): return name
            }
        }

        /// As Lua's `tostring` shows it (other values by type name).
        public var text: String {
            switch self {
            case .nil: return "nil"
            case .boolean(let flag): return flag ? "true" : "false"
            case .integer(let number): return String(number)
            case .float(let number):
                if number == number.rounded(), abs(number) < 1e15 { return "\(Int64(number)).0" }
                return "\(number)"
            case .string(let text): return text
            case .other(let name): return "a \(name)"
            }
        }
    }

    /// A reply the rules refuse, with the message a script author sees.
    public struct Violation: Error, Hashable, Sendable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { self.message }
    }

    /// `reply(code, enhanced, text)`.
    public static func make(code: Argument, enhanced: Argument, text: Argument) -> Result<SMTPReply, Violation> {
        guard case .integer(let number) = code, (200...599).contains(number) else {
            return .failure(Violation("reply code must be an integer from 200 to 599, got \(code.text)"))
        }
        guard case .string(let enhancedText) = enhanced else {
            return .failure(Violation("enhanced status code must be a string like \"5.7.1\", got \(enhanced.typeName)"))
        }
        guard let enhancedClass = Self.enhancedClass(enhancedText) else {
            return .failure(Violation(
                "invalid enhanced status code \"\(enhancedText)\" (expected class.subject.detail, e.g. \"5.7.1\")"))
        }
        let codeClass = Int(number) / 100
        guard codeClass == enhancedClass || (codeClass == 3 && enhancedClass == 2) else {
            return .failure(Violation(
                "reply code \(number) does not match enhanced status code \(enhancedText) (a \(codeClass)xx reply needs \(codeClass).x.x)"))
        }
        let body: String
        switch text {
        case .nil: body = ""
        case .string(let value): body = value
        default: return .failure(Violation("reply text must be a string, got \(text.typeName)"))
        }
        if body.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) {
            return .failure(Violation("reply text may not contain CR, LF or NUL"))
        }
        return .success(SMTPReply(code: Int(number), enhanced: enhancedText, text: body))
    }

    /// A `"550 5.7.1 text"` string.
    public static func parse(_ value: String) -> Result<SMTPReply, Violation> {
        let bytes = Array(value.utf8)
        let isDigit = { (b: UInt8) in b >= 0x30 && b <= 0x39 }
        guard bytes.count >= 5, isDigit(bytes[0]), isDigit(bytes[1]), isDigit(bytes[2]), bytes[3] == 0x20,
              !Self.isSpace(bytes[4]) else {
            return .failure(Violation(
                "invalid reply \"\(value)\" (expected \"CODE X.Y.Z text\", e.g. \"550 5.7.1 Access denied\")"))
        }
        let code = Int64(String(decoding: bytes[0..<3], as: UTF8.self))!
        var end = 4
        while end < bytes.count && !Self.isSpace(bytes[end]) { end += 1 }
        let enhanced = String(decoding: bytes[4..<end], as: UTF8.self)
        var rest = bytes[end...]
        if !rest.isEmpty {
            guard rest.first == 0x20 else { return .failure(Violation("invalid reply \"\(value)\"")) }
            rest = rest.dropFirst()
        }
        return Self.make(code: .integer(code), enhanced: .string(enhanced), text: .string(String(decoding: rest, as: UTF8.self)))
    }

    /// What `accept`, `defer` and `reject` allow.
    public static func check(_ reply: SMTPReply, for verdict: VerdictKind) -> Violation? {
        let codeClass = reply.code / 100
        switch verdict {
        case .accept where codeClass != 2 && codeClass != 3:
            return Violation("accept() takes a 2xx or 3xx reply, got \(reply.code)")
        case .defer_ where codeClass != 4:
            return Violation("defer() takes a 4xx reply, got \(reply.code)")
        case .reject where codeClass != 5:
            return Violation("reject() takes a 5xx reply, got \(reply.code)")
        default:
            return nil
        }
    }

    /// The class of an RFC 3463 code written `class.subject.detail` (1 to 3 digits each), or nil.
    public static func enhancedClass(_ text: String) -> Int? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 1, let first = parts[0].first, "245".contains(first) else { return nil }
        for part in parts.dropFirst() where !(1...3).contains(part.count) || !part.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return nil
        }
        return Int(String(first))
    }

    /// Lua's `%s` class: space, \t, \n, \v, \f, \r.
    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) }
}

extension LuaState {
    /// The argument at `index` of a host call, as reply validation judges it.
    func replyArgument(at index: Int32, _ thread: LuaThread) -> ReplyValidation.Argument {
        switch self.type(at: index, thread) {
        case .nil, .none: return .nil
        case .boolean: return .boolean(self.boolean(at: index, thread))
        case .number:
            if self.isInteger(at: index, thread), let value = self.integer(at: index, thread) { return .integer(Int64(value)) }
            return .float(self.number(at: index, thread))
        case .string: return .string(self.string(at: index, thread) ?? "")
        case let other: return .other(other.name)
        }
    }
}
