/// The rule API as data: every global a script can use, with its signature and a line
/// of documentation. The sandbox is checked against it (a test walks the sandbox's
/// globals), the linter reads it to know which globals exist, and the editor
/// definitions (`vrules api --luals`, `--luacheck`) are generated from it.
public struct HostAPI: Sendable {
    public struct Function: Sendable, Hashable {
        public var name: String
        /// Parameters as `name: type`, `?` marking optional ones (LuaLS syntax).
        public var parameters: [String]
        public var returns: [String]
        public var summary: String
    }

    public struct Table: Sendable, Hashable {
        public var name: String
        public var summary: String
        public var functions: [Function]
        /// Non-function fields (constants), as `name: type`.
        public var fields: [String]
    }

    public var functions: [Function]
    public var tables: [Table]
    /// Lua's own globals that the sandbox keeps (base library subset).
    public var standardGlobals: [String]

    /// Every global name a script can read.
    public var globalNames: Set<String> {
        Set(self.functions.map(\.name) + self.tables.map(\.name) + self.standardGlobals)
    }

    public func table(_ name: String) -> Table? { self.tables.first { $0.name == name } }

    /// The tables that are Lua's own libraries, with the members the sandbox keeps.
    public static let standardLibraries = ["string", "table", "math", "utf8", "os"]

    public static let current = HostAPI(
        functions: [
            Function(name: "rule", parameters: ["name: string", "fn: fun(ctx: vrules.Context): vrules.Verdict?"],
                     returns: ["vrules.Entry"], summary: "A rule of a stage: returns a verdict, or nothing to go on."),
            Function(name: "action", parameters: ["name: string", "fn: fun(ctx: vrules.Context)"],
                     returns: ["vrules.Entry"], summary: "A step for its side effects; it never decides."),
            Function(name: "accept", parameters: ["reply?: vrules.ReplyLike"], returns: ["vrules.Verdict"],
                     summary: "The stage passes; later rules of the stage are skipped."),
            Function(name: "defer", parameters: ["reply?: vrules.ReplyLike"], returns: ["vrules.Verdict"],
                     summary: "Temporary failure, 4xx only (default 451 4.4.3)."),
            Function(name: "reject", parameters: ["reply?: vrules.ReplyLike"], returns: ["vrules.Verdict"],
                     summary: "Permanent failure, 5xx only (default 550 5.7.25)."),
            Function(name: "next", parameters: ["t?: table", "k?: any"], returns: ["any"],
                     summary: "No decision: go on to the next rule (with a table, Lua's own next)."),
            Function(name: "reply", parameters: ["code: integer", "enhanced: string", "text?: string"],
                     returns: ["vrules.Reply"], summary: "An SMTP reply, validated: class of code and enhanced code agree, no CR/LF/NUL."),
            Function(name: "authres", parameters: ["ctx: vrules.Context", "results: { iprev: any?, spf: any? }"], returns: ["string"],
                     summary: "An Authentication-Results value (RFC 8601) from iprev and SPF results; authserv-id is ctx.server.name."),
            Function(name: "require", parameters: ["name: string"], returns: ["any"],
                     summary: "Loads a module from the rules directory (dotted names only)."),
            Function(name: "load", parameters: ["chunk: string", "chunkname?: string"], returns: ["function?", "string?"],
                     summary: "Compiles a text chunk in the sandbox (no bytecode)."),
            Function(name: "setmetatable", parameters: ["t: table", "mt: table?"], returns: ["table"],
                     summary: "Lua's setmetatable, refusing read-only tables and __gc."),
            Function(name: "rawset", parameters: ["t: table", "k: any", "v: any"], returns: ["table"],
                     summary: "Lua's rawset, refusing read-only tables."),
            Function(name: "collectgarbage", parameters: ["opt?: \"count\""], returns: ["number"],
                     summary: "Memory in use, in KiB (only \"count\")."),
        ],
        tables: [
            Table(name: "dns", summary: "DNS lookups through the configured resolver; every result carries .secure; transient failures (DNSSEC bogus among them) raise a DNS error.", functions: [
                Function(name: "lookup", parameters: ["name: string"], returns: ["vrules.Addresses", "vrules.Outcome"],
                         summary: "Addresses of a name, in ip_strategy order; .secure when DNSSEC-validated."),
                Function(name: "rlookup", parameters: ["ip: string"], returns: ["vrules.Names", "vrules.Outcome"],
                         summary: "PTR names of an IPv4 or IPv6 address; .secure when DNSSEC-validated."),
                Function(name: "locate_mx", parameters: ["domain: string"], returns: ["vrules.MXRoute"],
                         summary: "RFC 5321 §5.1 mail route: kind mx, implicit, null or none."),
                Function(name: "iprev", parameters: ["ip: string"], returns: ["vrules.Iprev"],
                         summary: "RFC 8601 iprev: pass, fail, permerror or temperror (never raises)."),
                Function(name: "query", parameters: ["name: string", "type: string"], returns: ["vrules.Records", "vrules.Outcome"],
                         summary: "Records of one type, with the CNAME chain in .chain; .secure when DNSSEC-validated."),
                Function(name: "dnsbl", parameters: ["subject: string", "zones: string|string[]"], returns: ["vrules.DNSBLResult[]"],
                         summary: "RFC 5782 blocklists, all asked at once: listed, clean, refused, error or temperror per zone (never raises)."),
            ], fields: []),
            Table(name: "spf", summary: "SPF (RFC 7208); DNS trouble is temperror, never an exception.", functions: [
                Function(name: "check", parameters: ["ctx: vrules.Context"], returns: ["vrules.SPFResult"],
                         summary: "The session's SPF result: MAIL FROM, or HELO for the null reverse-path and before MAIL FROM (at helo or later)."),
                Function(name: "check_host", parameters: ["ip: string", "domain: string", "sender: string", "helo?: string"],
                         returns: ["vrules.SPFResult"], summary: "RFC 7208 check_host() for any identity."),
                Function(name: "received_header", parameters: ["result: vrules.SPFResult"], returns: ["string"],
                         summary: "The value of a Received-SPF header (RFC 7208 §9.1) for a result."),
            ], fields: []),
            Table(name: "log", summary: "Log lines tagged with the rule and stage.", functions: [
                Function(name: "debug", parameters: ["...: any"], returns: [], summary: "Logs at debug level."),
                Function(name: "info", parameters: ["...: any"], returns: [], summary: "Logs at info level."),
                Function(name: "warn", parameters: ["...: any"], returns: [], summary: "Logs at warning level."),
                Function(name: "error", parameters: ["...: any"], returns: [], summary: "Logs at error level."),
            ], fields: []),
            Table(name: "replies", summary: "Named replies.", functions: [],
                  fields: ReplyCatalogue.entries.map { "\($0.name): vrules.Reply" }),
            Table(name: "string", summary: "Lua's string library without string.dump.", functions: [], fields: [
                "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "rep", "reverse", "sub",
                "upper", "pack", "packsize", "unpack",
            ]),
            Table(name: "table", summary: "Lua's table library.", functions: [], fields: [
                "concat", "insert", "move", "pack", "remove", "sort", "unpack",
            ]),
            Table(name: "math", summary: "Lua's math library.", functions: [], fields: [
                "abs", "ceil", "cos", "deg", "exp", "floor", "fmod", "huge", "log", "max", "maxinteger", "min",
                "mininteger", "modf", "pi", "rad", "random", "randomseed", "sin", "sqrt", "tan", "tointeger", "type",
                "ult", "acos", "asin", "atan",
            ]),
            Table(name: "utf8", summary: "Lua's utf8 library.", functions: [], fields: [
                "char", "charpattern", "codes", "codepoint", "len", "offset",
            ]),
            Table(name: "os", summary: "Time functions only.", functions: [], fields: ["time", "clock", "date"]),
        ],
        standardGlobals: [
            "assert", "error", "ipairs", "pairs", "pcall", "xpcall", "select", "tonumber", "tostring", "type",
            "rawequal", "rawget", "rawlen", "getmetatable", "_VERSION", "_G",
        ]
    )
}

/// How long a `rule`/`action` name may be: it goes into every log line and failure of its
/// rule, so a name built from data by mistake must not make each of them that long.
public enum RuleNaming {
    public static let maximumBytes = 200

    /// What a name past `maximumBytes` is told, for the linter.
    public static func tooLong(_ name: String) -> String {
        "name longer than \(Self.maximumBytes) bytes (\(name.utf8.count))"
    }

    /// The same text built in the prelude (a Lua expression over `name`).
    static let tooLongLuaFormat = #"format("name longer than \#(maximumBytes) bytes (%d)", #name)"#
}
