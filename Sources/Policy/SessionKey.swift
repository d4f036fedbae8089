/// One SMTP connection as Postfix reports it: both ends, address and port. A client
/// that reaches two addresses of one vrules from the same address and port (two MX
/// records served by one instance) holds two connections, not one.
///
/// Its hash is computed once, when it is made: a request looks its connection and its
/// transaction up in several tables, and hashing the four strings again for each lookup
/// was a visible share of a request's cost.
struct ConnectionKey: Hashable, Sendable, CustomStringConvertible {
    let clientAddress: String
    let clientPort: String
    let serverAddress: String
    let serverPort: String
    private let hashCode: Int

    init(_ request: PolicyRequest) {
        self.clientAddress = request[.clientAddress] ?? ""
        self.clientPort = request[.clientPort] ?? ""
        self.serverAddress = request[.serverAddress] ?? ""
        self.serverPort = request[.serverPort] ?? ""
        var hasher = Hasher()
        hasher.combine(self.clientAddress)
        hasher.combine(self.clientPort)
        hasher.combine(self.serverAddress)
        hasher.combine(self.serverPort)
        self.hashCode = hasher.finalize()
    }

    static func == (lhs: ConnectionKey, rhs: ConnectionKey) -> Bool {
        lhs.hashCode == rhs.hashCode && lhs.clientAddress == rhs.clientAddress && lhs.clientPort == rhs.clientPort
            && lhs.serverAddress == rhs.serverAddress && lhs.serverPort == rhs.serverPort
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(self.hashCode)
    }

    var description: String { "\(self.clientAddress)/\(self.clientPort)->\(self.serverAddress)/\(self.serverPort)" }
}

/// What ties a message's requests together: Postfix's `instance` on its connection, or,
/// before the instance is known (before RCPT, or with `smtpd_delay_reject = no`), the
/// connection alone. `instance` is only unique within one smtpd process, so it never
/// stands without the connection. Hashed once, as `ConnectionKey`.
struct TransactionKey: Hashable, Sendable, CustomStringConvertible {
    let connection: ConnectionKey
    let instance: String?
    private let hashCode: Int

    init(connection: ConnectionKey, instance: String?) {
        self.connection = connection
        self.instance = instance
        var hasher = Hasher()
        hasher.combine(connection)
        hasher.combine(instance)
        self.hashCode = hasher.finalize()
    }

    init(_ request: PolicyRequest) {
        self.init(connection: ConnectionKey(request), instance: request[.instance])
    }

    static func == (lhs: TransactionKey, rhs: TransactionKey) -> Bool {
        lhs.hashCode == rhs.hashCode && lhs.connection == rhs.connection && lhs.instance == rhs.instance
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(self.hashCode)
    }

    var description: String { "\(self.connection)#\(self.instance ?? "-")" }
}
