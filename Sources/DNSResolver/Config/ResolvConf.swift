import OperatorFiles

/// What `/etc/resolv.conf` says, read the way glibc reads it: `nameserver` lines (at most
/// three are used by glibc; all are kept here), `options timeout: attempts: rotate ndots:`,
/// and `search`/`domain` (the last of the two wins).
public struct ResolvConf: Hashable, Sendable {
    public var nameservers: [DNSServerAddress] = []
    public var timeoutSeconds: Int?
    public var attempts: Int?
    public var rotate: Bool = false
    public var ndots: Int?
    public var search: [String] = []
    /// Lines that were not understood (a scoped link-local nameserver, say), for diagnostics.
    public var ignoredLines: [String] = []

    public init() {}

    public init(parsing text: String) {
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.prefix { $0 != "#" && $0 != ";" }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let keyword = words.first else { continue }
            let arguments = Array(words.dropFirst())
            switch keyword {
            case "nameserver":
                if let text = arguments.first, let server = DNSServerAddress(parsing: text) {
                    self.nameservers.append(server)
                } else {
                    self.ignoredLines.append(String(rawLine))
                }
            case "search":
                self.search = arguments.map { $0.lowercased() }
            case "domain":
                self.search = arguments.prefix(1).map { $0.lowercased() }
            case "options":
                for option in arguments { self.apply(option: option, line: String(rawLine)) }
            default:
                self.ignoredLines.append(String(rawLine))
            }
        }
    }

    private mutating func apply(option: String, line: String) {
        if option == "rotate" {
            self.rotate = true
            return
        }
        let parts = option.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let value = Int(parts[1]), value >= 0 else { return }
        // The caps are glibc's (resolv/res_init.c).
        switch parts[0] {
        case "timeout": self.timeoutSeconds = min(max(value, 1), 30)
        case "attempts": self.attempts = min(value, 5)
        case "ndots": self.ndots = min(value, 15)
        default: break
        }
    }

    /// Reads the file; a missing file means glibc's defaults (a server on loopback).
    public static func load(path: String) throws(InputFileError) -> ResolvConf {
        guard let text = try readTextFile(path, limit: resolvConfMaximumSize) else {
            var conf = ResolvConf()
            conf.nameservers = [DNSServerAddress(ip: .v4([127, 0, 0, 1]))]
            return conf
        }
        var conf = ResolvConf(parsing: text)
        if conf.nameservers.isEmpty { conf.nameservers = [DNSServerAddress(ip: .v4([127, 0, 0, 1]))] }
        return conf
    }
}
