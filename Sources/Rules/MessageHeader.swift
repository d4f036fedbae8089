/// Where the headers the rules added end up (`SessionReport.headerDelivery`).
public struct HeaderDelivery: Sendable {
    /// On the message, in order.
    public var onMessage: [MessageHeader] = []
    /// Not on the message, each with why.
    public var notOnMessage: [(header: MessageHeader, reason: String)] = []

    public init() {}

    /// Why a header that no answer could carry is not on the message.
    public static let noAnswerAdvice = """
        no answer was left to carry it: Postfix takes one header per answer that lets the message go on, \
        at each RCPT and at DATA (name the policy service in smtpd_data_restrictions too, or add fewer headers)
        """

    /// Why a header of a session that sent no message is not on one.
    public static let noMessageAdvice = "the session gave no recipient, so it sent no message"

    /// Why a header of a session refused at `stage` is not on a message: there is none
    /// (`vrules serve` drops such headers; in a dry run they ride on its DUNNO answers).
    public static func refusedAdvice(at stage: Stage) -> String {
        stage == .rcpt ? "every recipient was refused, so the session sent no message"
            : "the session was refused at \(stage.rawValue), so it sent no message"
    }

    /// Why `header` is not on the message, or nil when it is (or was never added).
    public func reason(for header: MessageHeader) -> String? {
        self.notOnMessage.first { $0.header == header }?.reason
    }
}

/// A header a rule adds to the message (`ctx.add_header(name, value)`): `vrules run` prints
/// it, `vrules test` can expect it, `vrules serve` hands it to Postfix as a `PREPEND` action.
public struct MessageHeader: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    public var description: String { "\(self.name): \(self.value)" }

    /// The longest header line accepted (RFC 5322 §2.1.1: 998 characters).
    public static let maximumLength = 998

    /// A header as a rule gave it, or why it cannot be one. The name is printable ASCII
    /// without `:` (RFC 5322 §3.6.8); the value is printable ASCII, space or tab, without
    /// CR, LF or NUL, so nothing a rule builds from DNS or from the client can start a new
    /// header line or end the message. UTF-8 is allowed in values (RFC 6532): an SMTPUTF8
    /// sender appears as the client gave it.
    public static func validated(name: String, value: String) -> Result<MessageHeader, ReplyValidation.Violation> {
        guard !name.isEmpty, Self.allBytes(of: name, satisfy: { $0 >= 33 && $0 <= 126 && $0 != UInt8(ascii: ":") }) else {
            return .failure(.init("ctx.add_header: invalid header name '\(name.prefix(80))' (printable ASCII without ':')"))
        }
        guard Self.allBytes(of: value, satisfy: { ($0 >= 32 && $0 != 127) || $0 == 9 }) else {
            return .failure(.init("ctx.add_header: the value of '\(name)' may hold only printable text, spaces and tabs (no CR, LF, NUL or other control characters)"))
        }
        guard name.utf8.count + 2 + value.utf8.count <= Self.maximumLength else {
            return .failure(.init("ctx.add_header: '\(name)' is longer than \(Self.maximumLength) characters"))
        }
        return .success(MessageHeader(name: name, value: value))
    }

    /// A byte test over the contiguous UTF-8 of a native string (a header is checked on
    /// every `ctx.add_header`; the generic `UTF8View` iteration showed in profiles).
    private static func allBytes(of text: String, satisfy test: (UInt8) -> Bool) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { $0.allSatisfy(test) } ?? text.utf8.allSatisfy(test)
    }
}
