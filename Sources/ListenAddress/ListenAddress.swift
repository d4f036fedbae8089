/// Where a server listens: `127.0.0.1:10040`, `[::1]:10040` or `unix:/run/vrules/policy.sock`.
///
/// One parser for `--listen` and `[policy] listen`, so that `vrules check` refuses every
/// address `vrules serve` would, with the same reason, before the server is started.
public enum ListenAddress: Hashable, Sendable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    /// The most addresses one server listens on: a bound on the work of comparing them, so
    /// that a file listing thousands cannot stall `vrules check` (each is compared with the
    /// ones before it).
    public static let maximumCount = 64

    /// The longest UNIX socket path: `sun_path` less its terminating NUL.
    public static let maximumUnixPathBytes = 107

    public init?(_ text: String) {
        guard case .success(let address) = Self.parse(text) else { return nil }
        self = address
    }

    /// The address, or why it is not one that can be listened on.
    public static func parse(_ text: String) -> Result<ListenAddress, ListenAddressProblem> {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { return .failure(ListenAddressProblem("no path after 'unix:'")) }
            guard path.utf8.count <= Self.maximumUnixPathBytes else {
                return .failure(ListenAddressProblem(
                    "the path is too long for a socket (\(path.utf8.count) bytes; \(Self.maximumUnixPathBytes) at most)"))
            }
            return .success(.unix(path: path))
        }
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return .failure(.notAnAddress)
            }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return .failure(.notAnAddress) }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }) else { return .failure(.notAnAddress) }
        guard port.count <= 5, let number = Int(port), number <= 65535 else {
            return .failure(ListenAddressProblem("port \(port) is not 0 to 65535"))
        }
        return .success(.tcp(host: String(host), port: number))
    }

    /// Why two of `addresses` cannot both be listened on, found without binding: the same
    /// address twice, or one TCP port on an address and on a wildcard that covers it
    /// (`0.0.0.0` covers the IPv4 addresses; `::` every address, as Linux binds it by
    /// default). Host names are not resolved here, so not judged; port 0 is a new port each time.
    public static func conflict(in addresses: [ListenAddress]) -> String? {
        for index in addresses.indices {
            if let conflict = Self.conflict(addresses[index], with: addresses[..<index]) { return conflict }
        }
        return nil
    }

    /// Why `address` cannot be listened on beside `earlier`, as `conflict(in:)` says it.
    public static func conflict(_ address: ListenAddress, with earlier: ArraySlice<ListenAddress>) -> String? {
        for other in earlier {
            guard case .tcp(let host, let port) = address, case .tcp(let otherHost, let otherPort) = other else {
                if address == other { return "\(address) is listed twice" }
                continue
            }
            guard port == otherPort, port != 0 else { continue }
            if host == otherHost { return "\(address) is listed twice" }
            if let wildcard = Self.wildcard(covering: host, or: otherHost) {
                return "\(other) and \(address) both take port \(port) (\(wildcard) is every \(wildcard == "::" ? "" : "IPv4 ")address)"
            }
        }
        return nil
    }

    /// The wildcard of the two hosts when it covers the other one.
    private static func wildcard(covering first: String, or second: String) -> String? {
        for (wildcard, other) in [(first, second), (second, first)] {
            switch wildcard {
            case "::" where Self.isIPLiteral(other): return wildcard
            case "0.0.0.0" where Self.isIPv4Literal(other): return wildcard
            default: continue
            }
        }
        return nil
    }

    private static func isIPv4Literal(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy { $0.isASCII && $0.isNumber } }
    }

    private static func isIPLiteral(_ host: String) -> Bool { host.contains(":") || Self.isIPv4Literal(host) }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

/// Why a text is not a listen address.
public struct ListenAddressProblem: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String

    init(_ reason: String) { self.reason = reason }

    static let notAnAddress = ListenAddressProblem("not HOST:PORT, [IPV6]:PORT or unix:PATH")

    public var description: String { self.reason }
}
