#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import OneLineText
import ServiceLifecycle

/// The UNIX socket `vrules reload` and `vrules status` talk to (`vrules serve --control PATH`).
/// A reload is answered once the reload it asked for is done, with its outcome, so `systemctl
/// reload vrules` (the unit's `ExecReload`) fails when the new rules do not load instead of
/// reporting success for a signal sent; the status is what `status` says it is now.
///
/// The socket has mode 0600 from its first moment: only the server's user (and root) may
/// connect. Even so it holds to bounds: a few connections at once (others wait in the
/// backlog), the command whole within `commandTimeout` of the connection or the connection
/// is closed, one command of at most `ControlProtocol.maximumCommandBytes` per connection.
public final class ControlSocket: Service, @unchecked Sendable {
    public static let defaultMaximumConnections = 4
    public static let defaultCommandTimeout = TimeAmount.seconds(10)

    // @unchecked: `listener` and `bound` are set by start() before run() and read after it.
    private let path: String
    private let requests: ReloadRequests
    private let status: ControlProtocol.StatusSource
    private let group: EventLoopGroup
    private let logger: Logger
    private let maximumConnections: Int
    private let commandTimeout: TimeAmount
    private var listener: (any Channel)?
    /// The socket file this server made (device, inode): removed at stop only if still there.
    private var bound: (dev_t, ino_t)?

    /// `status` gives the lines `vrules status` prints, or the one line of `vrules status --json`.
    public init(path: String, requests: ReloadRequests, status: @escaping ControlProtocol.StatusSource = { _ in [] },
                group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "vrules.control"),
                maximumConnections: Int = ControlSocket.defaultMaximumConnections,
                commandTimeout: TimeAmount = ControlSocket.defaultCommandTimeout) {
        self.path = path
        self.requests = requests
        self.status = status
        self.group = group
        self.logger = logger
        self.maximumConnections = maximumConnections
        self.commandTimeout = commandTimeout
    }

    /// Binds the socket; a failure is a `PolicyListenError` naming the path and the reason.
    public func start() async throws {
        let requests = self.requests
        let status = self.status
        let logger = self.logger
        let commandTimeout = self.commandTimeout
        let maximumConnections = self.maximumConnections
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(ChannelOptions.maxMessagesPerRead, value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionLimitHandler(
                        maximum: maximumConnections, connections: OpenConnections(), logger: logger, service: "control"))
                }
            }
            // A client that half-closes after its command still gets the answer.
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ControlCommandHandler(requests: requests, status: status, timeout: commandTimeout, logger: logger))
                }
            }
        do {
            self.listener = try await UnixSocketAccess(mode: 0o600).bind(self.path, with: bootstrap)
        } catch {
            throw PolicyListenError(address: "unix:\(self.path)", reason: PolicyListenError.reason(for: error))
        }
        var file = stat()
        if lstat(self.path, &file) == 0 { self.bound = (file.st_dev, file.st_ino) }
        self.logger.info("control socket listening (vrules reload, vrules status)", metadata: ["path": "\(self.path)"])
    }

    public func run() async throws {
        if self.listener == nil { try await self.start() }
        try? await gracefulShutdown()
        await self.stop()
    }

    /// Closes the listener and removes its socket file, so `vrules reload` finds no server
    /// rather than a socket nobody listens on; a file another process put there stays.
    func stop() async {
        try? await self.listener?.close()
        self.listener = nil
        var status = stat()
        if let (device, inode) = self.bound, lstat(self.path, &status) == 0, status.st_dev == device, status.st_ino == inode {
            unlink(self.path)
        }
        self.bound = nil
    }
}

/// Reads one command line, answers it and closes the connection. What follows the command is
/// not read; a command that is not whole within the timeout, or longer than the protocol
/// allows, is answered `error` and closed.
final class ControlCommandHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let requests: ReloadRequests
    private let status: ControlProtocol.StatusSource
    private let timeout: TimeAmount
    private let logger: Logger
    private var line: [UInt8] = []
    /// The command was read (or refused): nothing more is.
    private var taken = false
    private var deadline: Scheduled<Void>?

    init(requests: ReloadRequests, status: @escaping ControlProtocol.StatusSource, timeout: TimeAmount, logger: Logger) {
        self.requests = requests
        self.status = status
        self.timeout = timeout
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        let logger = self.logger
        let timeout = Self.text(self.timeout)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.deadline = context.eventLoop.scheduleTask(in: self.timeout) {
            // Bytes read after this are not a command any more.
            handler.value.taken = true
            logger.notice("control socket: no whole command in time, closing the connection", metadata: ["timeout": "\(timeout)"])
            Self.answer(ControlProtocol.Answer(status: .error, summary: "no whole command within \(timeout)"), on: channel)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.taken else { return }
        var buffer = Self.unwrapInboundIn(data)
        while let byte = buffer.readInteger(as: UInt8.self) {
            if byte == UInt8(ascii: "\n") {
                self.take(context: context)
                return
            }
            self.line.append(byte)
            if self.line.count > ControlProtocol.maximumCommandBytes + 1 {
                self.refuse("a command is one line of at most \(ControlProtocol.maximumCommandBytes) bytes", context: context)
                return
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client sent its command without a newline and half-closed.
        if case ChannelEvent.inputClosed = event, !self.taken {
            if self.line.isEmpty {
                self.taken = true
                self.deadline?.cancel()
                context.close(promise: nil)
            } else {
                self.take(context: context)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func take(context: ChannelHandlerContext) {
        self.taken = true
        self.deadline?.cancel()
        if self.line.last == UInt8(ascii: "\r") { self.line.removeLast() }
        guard self.line.count <= ControlProtocol.maximumCommandBytes else {
            self.refuse("a command is one line of at most \(ControlProtocol.maximumCommandBytes) bytes", context: context)
            return
        }
        let command = String(decoding: self.line, as: UTF8.self)
        switch command {
        case ControlProtocol.reloadCommand:
            self.logger.notice("reload asked on the control socket")
            Self.reloadAndAnswer(self.requests, on: context.channel)
        case ControlProtocol.statusCommand:
            Self.statusAndAnswer(self.status, format: .text, on: context.channel)
        case ControlProtocol.statusJSONCommand:
            Self.statusAndAnswer(self.status, format: .json, on: context.channel)
        default:
            self.refuse("unknown command '\(command)' (the commands: \(ControlProtocol.commands.joined(separator: ", ")))", context: context)
        }
    }

    private static func statusAndAnswer(_ status: @escaping ControlProtocol.StatusSource, format: ControlProtocol.StatusFormat, on channel: any Channel) {
        Task {
            let lines = await status(format)
            Self.answer(ControlProtocol.Answer(status: .ok, summary: "serving", details: lines), on: channel)
        }
    }

    private static func reloadAndAnswer(_ requests: ReloadRequests, on channel: any Channel) {
        Task {
            let outcome = await requests.reload(.control)
            Self.answer(.reloaded(outcome), on: channel)
        }
    }

    private func refuse(_ reason: String, context: ChannelHandlerContext) {
        self.taken = true
        self.deadline?.cancel()
        self.logger.notice("control socket: command refused", metadata: ["reason": "\(OneLine.escaped(reason))"])
        Self.answer(ControlProtocol.Answer(status: .error, summary: reason), on: context.channel)
    }

    /// `10 s`, `400 ms`.
    private static func text(_ amount: TimeAmount) -> String {
        amount.nanoseconds % 1_000_000_000 == 0 ? "\(amount.nanoseconds / 1_000_000_000) s" : "\(amount.nanoseconds / 1_000_000) ms"
    }

    /// Writes the answer and closes the connection once it is written (or cannot be).
    private static func answer(_ answer: ControlProtocol.Answer, on channel: any Channel) {
        var buffer = channel.allocator.buffer(capacity: 256)
        buffer.writeString(answer.encoded)
        channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
    }
}
