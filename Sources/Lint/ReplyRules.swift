/// The reply validation of the prelude (`make_reply`, `to_reply`, `accept`/`defer`/`reject`),
/// restated in Swift so that literal replies can be judged without running a rule. The
/// messages are the prelude's own, so `vrules check` and a failing rule say the same thing.
enum ReplyRules {
    struct Reply: Hashable, Sendable {
        var code: Int
        var enhanced: String
        var text: String
    }

    /// `replies.*` as the prelude defines them (a test compares each with the running engine).
    static let namedReplies: [String: Reply] = [
        "ok": Reply(code: 250, enhanced: "2.0.0", text: "Ok"),
        "directory_failure": Reply(code: 451, enhanced: "4.4.3", text: "Directory server failure, try again later"),
        "unable_to_route": Reply(code: 550, enhanced: "5.4.4", text: "Unable to route"),
        "unable_to_route_temp": Reply(code: 451, enhanced: "4.4.4", text: "Unable to route, try again later"),
        "rdns_failed": Reply(code: 550, enhanced: "5.7.25", text: "Reverse DNS validation failed"),
        "null_mx": Reply(code: 550, enhanced: "5.7.27", text: "Sender address has null MX"),
        "rcpt_null_mx": Reply(code: 556, enhanced: "5.1.10", text: "Recipient address has null MX"),
        "local_error": Reply(code: 451, enhanced: "4.3.0", text: "Local error in processing, try again later"),
        "access_denied": Reply(code: 550, enhanced: "5.7.1", text: "Access denied"),
        "bad_helo": Reply(code: 550, enhanced: "5.7.1", text: "Invalid HELO/EHLO name"),
    ]

    /// `reply(code, enhanced, text)` with constant arguments (nil for an absent text).
    static func make(code: LuaConstant?, enhanced: LuaConstant?, text: LuaConstant?) -> Result<Reply, ReplyViolation> {
        guard case .integer(let number)? = code, (200...599).contains(number) else {
            return .failure(ReplyViolation("reply code must be an integer from 200 to 599, got \(Self.describe(code))"))
        }
        guard case .string(let enhancedText)? = enhanced else {
            return .failure(ReplyViolation("enhanced status code must be a string like \"5.7.1\", got \(Self.typeName(enhanced))"))
        }
        guard let enhancedClass = Self.enhancedClass(enhancedText) else {
            return .failure(ReplyViolation(
                "invalid enhanced status code \"\(enhancedText)\" (expected class.subject.detail, e.g. \"5.7.1\")"))
        }
        let codeClass = Int(number) / 100
        guard codeClass == enhancedClass || (codeClass == 3 && enhancedClass == 2) else {
            return .failure(ReplyViolation(
                "reply code \(number) does not match enhanced status code \(enhancedText) (a \(codeClass)xx reply needs \(codeClass).x.x)"))
        }
        var body = ""
        switch text {
        case nil, .nil?: body = ""
        case .string(let value)?: body = value
        default: return .failure(ReplyViolation("reply text must be a string, got \(Self.typeName(text))"))
        }
        if body.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) {
            return .failure(ReplyViolation("reply text may not contain CR, LF or NUL"))
        }
        return .success(Reply(code: Int(number), enhanced: enhancedText, text: body))
    }

    /// A `"550 5.7.1 text"` string, as `to_reply` reads it.
    static func parse(_ value: String) -> Result<Reply, ReplyViolation> {
        let bytes = Array(value.utf8)
        let isDigit = { (b: UInt8) in b >= 0x30 && b <= 0x39 }
        guard bytes.count >= 5, isDigit(bytes[0]), isDigit(bytes[1]), isDigit(bytes[2]), bytes[3] == 0x20,
              !Self.isSpace(bytes[4]) else {
            return .failure(ReplyViolation(
                "invalid reply \"\(value)\" (expected \"CODE X.Y.Z text\", e.g. \"550 5.7.1 Access denied\")"))
        }
        let code = Int(String(decoding: bytes[0..<3], as: UTF8.self))!
        var end = 4
        while end < bytes.count && !Self.isSpace(bytes[end]) { end += 1 }
        let enhanced = String(decoding: bytes[4..<end], as: UTF8.self)
        var rest = Array(bytes[end...])
        if !rest.isEmpty {
            guard rest[0] == 0x20 else { return .failure(ReplyViolation("invalid reply \"\(value)\"")) }
            rest.removeFirst()
        }
        return Self.make(code: .integer(Int64(code)), enhanced: .string(enhanced),
                         text: .string(String(decoding: rest, as: UTF8.self)))
    }

    /// What `accept`, `defer` and `reject` allow.
    static func check(_ reply: Reply, for verdict: String) -> ReplyViolation? {
        let codeClass = reply.code / 100
        switch verdict {
        case "accept" where codeClass != 2 && codeClass != 3:
            return ReplyViolation("accept() takes a 2xx or 3xx reply, got \(reply.code)")
        case "defer" where codeClass != 4:
            return ReplyViolation("defer() takes a 4xx reply, got \(reply.code)")
        case "reject" where codeClass != 5:
            return ReplyViolation("reject() takes a 5xx reply, got \(reply.code)")
        default:
            return nil
        }
    }

    /// `^([245])%.%d%d?%d?%.%d%d?%d?$`
    static func enhancedClass(_ text: String) -> Int? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 1, let first = parts[0].first, "245".contains(first) else { return nil }
        for part in parts.dropFirst() where !(1...3).contains(part.count) || !part.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return nil
        }
        return Int(String(first))
    }

    /// Lua's `%s` class: space, \t, \n, \v, \f, \r.
    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) }

    static func typeName(_ value: LuaConstant?) -> String {
        switch value {
        case nil, .nil?: return "nil"
        case .boolean?: return "boolean"
        case .integer?, .float?: return "number"
        case .string?: return "string"
        }
    }

    /// `tostring` of a constant, as the prelude's messages show it.
    static func describe(_ value: LuaConstant?) -> String {
        switch value {
        case nil, .nil?: return "nil"
        case .boolean(let flag)?: return flag ? "true" : "false"
        case .integer(let number)?: return String(number)
        case .float(let number)?:
            if number == number.rounded(), abs(number) < 1e15 { return "\(Int64(number)).0" }
            return "\(number)"
        case .string(let text)?: return text
        }
    }
}

/// A literal reply the prelude would refuse, with the prelude's message.
struct ReplyViolation: Error, Hashable {
    var message: String
    init(_ message: String) { self.message = message }
}
