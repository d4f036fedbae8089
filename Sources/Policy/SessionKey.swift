/// One SMTP connection as Postfix reports it: both ends, address and port. A client
/// that reaches two addresses of one vrules from the same address and port (two MX
/// records served by one instance) holds two connections, not one.
struct ConnectionKey: Hashable, Sendable, CustomStringConvertible {
    var clientAddress: String
    var clientPort: String
    var serverAddress: String
    var serverPort: String

    init(_ request: PolicyRequest) {
        self.clientAddress = request[.clientAddress] ?? ""
        self.clientPort = request[.clientPort] ?? ""
        self.serverAddress = request[.serverAddress] ?? ""
        self.serverPort = request[.serverPort] ?? ""
    }

    var description: String { "\(self.clientAddress)/\(self.clientPort)->\(self.serverAddress)/\(self.serverPort)" }
}

/// What ties a message's requests together: Postfix's `instance` on its connection, or,
/// before the instance is known (before RCPT, or with `smtpd_delay_reject = no`), the
/// connection alone. `instance` is only unique within one smtpd process, so it never
/// stands without the connection.
struct TransactionKey: Hashable, Sendable, CustomStringConvertible {
    var connection: ConnectionKey
    var instance: String?

    init(connection: ConnectionKey, instance: String?) {
        self.connection = connection
        self.instance = instance
    }

    init(_ request: PolicyRequest) {
        self.init(connection: ConnectionKey(request), instance: request[.instance])
    }

    var description: String { "\(self.connection)#\(self.instance ?? "-")" }
}
