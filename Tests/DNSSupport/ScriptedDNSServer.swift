import DNS
import DNSResolver
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What the scripted server does with one query. An empty list drops the query.
package enum ScriptedAction: Sendable {
    /// Sends `message` after `delay`, from the port the query was sent to.
    case send(DNSMessage, after: TimeAmount = .zero)
    /// Sends raw octets (junk, a mangled packet) after `delay`.
    case sendRaw([UInt8], after: TimeAmount = .zero)
    /// Sends `message` from a different local port: a spoofed reply from the wrong source.
    case sendFromOtherPort(DNSMessage, after: TimeAmount = .zero)
}

/// How the server answers: called for every query, over UDP (`overTCP` false) or TCP.
package typealias DNSServerScript = @Sendable (_ query: DNSMessage, _ overTCP: Bool) -> [ScriptedAction]

/// An in-process DNS server on loopback (UDP and TCP on the same port) whose every reply is
/// scripted, for exact fault injection in tests: delays, drops, SERVFAIL, truncation, spoofed
/// IDs, questions and source ports. In a test-support target of its own (`DNSTestSupport`), so
/// that no product carries it; the resolver, rule engine and CLI tests share it.
package final class ScriptedDNSServer: Sendable {
    package struct LoggedQuery: Hashable, Sendable {
        package var question: DNSWireQuestion
        package var overTCP: Bool
        package var dnssecOK: Bool
        /// CD: the asker validates itself and wants the data even if the server thinks it bogus.
        package var checkingDisabled: Bool = false
        package var id: UInt16
        /// The port the query came from.
        package var sourcePort: Int
    }

    package let address: DNSServerAddress
    private let udp: any Channel
    private let otherPort: any Channel
    private let tcp: any Channel
    private let log: NIOLockedValueBox<[LoggedQuery]>
    private let scriptBox: NIOLockedValueBox<DNSServerScript>

    /// Starts the server on 127.0.0.1 (or `host`) on a free port.
    package static func start(host: String = "127.0.0.1",
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             script: @escaping DNSServerScript) async throws -> ScriptedDNSServer {
        var lastError: (any Error)? = nil
        // UDP first on a kernel-chosen port, then TCP on the same number; retry if taken.
        for _ in 0..<20 {
            let box = NIOLockedValueBox<DNSServerScript>(script)
            let log = NIOLockedValueBox([LoggedQuery]())
            let other = try await DatagramBootstrap(group: group).bind(host: host, port: 0).get()
            let udpHandler = UDPServerHandler(script: box, log: log, otherPort: other)
            let udp = try await DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(udpHandler) }
                }
                .bind(host: host, port: 0).get()
            let port = udp.localAddress!.port!
            do {
                let tcp = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                            try channel.pipeline.syncOperations.addHandler(TCPServerHandler(script: box, log: log))
                        }
                    }
                    .bind(host: host, port: port).get()
                let ip = IPAddress(host)!
                return ScriptedDNSServer(address: DNSServerAddress(ip: ip, port: UInt16(port)),
                                         udp: udp, otherPort: other, tcp: tcp, log: log, script: box)
            } catch {
                lastError = error
                try? await udp.close()
                try? await other.close()
            }
        }
        throw lastError!
    }

    private init(address: DNSServerAddress, udp: any Channel, otherPort: any Channel, tcp: any Channel,
                 log: NIOLockedValueBox<[LoggedQuery]>, script: NIOLockedValueBox<DNSServerScript>) {
        self.address = address
        self.udp = udp
        self.otherPort = otherPort
        self.tcp = tcp
        self.log = log
        self.scriptBox = script
    }

    /// Replaces the script, e.g. to make a server fail after it has answered once.
    package func setScript(_ script: @escaping DNSServerScript) {
        self.scriptBox.withLockedValue { $0 = script }
    }

    /// Every query received so far, in order.
    package var queries: [LoggedQuery] { self.log.withLockedValue { $0 } }

    package func resetLog() { self.log.withLockedValue { $0.removeAll() } }

    /// Stops listening on TCP only, so that a truncated reply's TCP retry finds no server.
    package func closeTCP() async {
        try? await self.tcp.close()
    }

    package func stop() async {
        try? await self.udp.close()
        try? await self.otherPort.close()
        try? await self.tcp.close()
    }

    /// A reply to `query`: same ID and question, QR set, RD echoed.
    package static func reply(to query: DNSMessage, rcode: DNSResponseCode = .noError, answers: [DNSResourceRecord] = [],
                             authority: [DNSResourceRecord] = [], additional: [DNSResourceRecord] = [],
                             authoritative: Bool = true, truncated: Bool = false, authenticData: Bool = false,
                             edns: EDNS? = EDNS()) -> DNSMessage {
        var header = DNSHeader(id: query.header.id, isResponse: true, authoritative: authoritative, truncated: truncated,
                               recursionDesired: query.header.recursionDesired, recursionAvailable: true,
                               authenticData: authenticData)
        header.rcodeLow = 0
        var message = DNSMessage(header: header, questions: query.questions, answers: answers, authority: authority,
                                 additional: additional, edns: query.edns == nil ? nil : edns)
        message.responseCode = rcode
        return message
    }
}

private func runActions(_ actions: [ScriptedAction], on eventLoop: any EventLoop,
                        write: @escaping @Sendable ([UInt8], _ fromOtherPort: Bool) -> Void) {
    for action in actions {
        let bytes: [UInt8]
        let delay: TimeAmount
        let fromOther: Bool
        switch action {
        case .send(let message, let after):
            guard let encoded = try? message.encoded() else { continue }
            (bytes, delay, fromOther) = (encoded, after, false)
        case .sendRaw(let raw, let after):
            (bytes, delay, fromOther) = (raw, after, false)
        case .sendFromOtherPort(let message, let after):
            guard let encoded = try? message.encoded() else { continue }
            (bytes, delay, fromOther) = (encoded, after, true)
        }
        if delay <= .zero {
            eventLoop.execute { write(bytes, fromOther) }
        } else {
            eventLoop.scheduleTask(in: delay) { write(bytes, fromOther) }
        }
    }
}

private final class UDPServerHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let script: NIOLockedValueBox<DNSServerScript>
    let log: NIOLockedValueBox<[ScriptedDNSServer.LoggedQuery]>
    let otherPort: any Channel

    init(script: NIOLockedValueBox<DNSServerScript>, log: NIOLockedValueBox<[ScriptedDNSServer.LoggedQuery]>, otherPort: any Channel) {
        self.script = script
        self.log = log
        self.otherPort = otherPort
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = self.unwrapInboundIn(data)
        var buffer = envelope.data
        guard let query = try? DNSMessage(decoding: buffer.readBytes(length: buffer.readableBytes) ?? []),
              let question = query.questions.first else { return }
        self.log.withLockedValue {
            $0.append(.init(question: question, overTCP: false, dnssecOK: query.edns?.dnssecOK ?? false,
                            checkingDisabled: query.header.checkingDisabled,
                            id: query.header.id, sourcePort: envelope.remoteAddress.port ?? 0))
        }
        let actions = self.script.withLockedValue { $0 }(query, false)
        let channel = context.channel
        let other = self.otherPort
        let remote = envelope.remoteAddress
        runActions(actions, on: context.eventLoop) { bytes, fromOther in
            let target = fromOther ? other : channel
            var out = target.allocator.buffer(capacity: bytes.count)
            out.writeBytes(bytes)
            target.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: out), promise: nil)
        }
    }
}

private final class TCPServerHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    let script: NIOLockedValueBox<DNSServerScript>
    let log: NIOLockedValueBox<[ScriptedDNSServer.LoggedQuery]>

    init(script: NIOLockedValueBox<DNSServerScript>, log: NIOLockedValueBox<[ScriptedDNSServer.LoggedQuery]>) {
        self.script = script
        self.log = log
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        guard let query = try? DNSMessage(decoding: buffer.readBytes(length: buffer.readableBytes) ?? []),
              let question = query.questions.first else { return }
        self.log.withLockedValue {
            $0.append(.init(question: question, overTCP: true, dnssecOK: query.edns?.dnssecOK ?? false,
                            checkingDisabled: query.header.checkingDisabled, id: query.header.id, sourcePort: context.channel.remoteAddress?.port ?? 0))
        }
        let actions = self.script.withLockedValue { $0 }(query, true)
        let channel = context.channel
        runActions(actions, on: context.eventLoop) { bytes, _ in
            var out = channel.allocator.buffer(capacity: bytes.count + 2)
            out.writeInteger(UInt16(truncatingIfNeeded: bytes.count))
            out.writeBytes(bytes)
            channel.writeAndFlush(out, promise: nil)
        }
    }
}

extension ScriptedDNSServer {
    /// A script that answers like an authoritative server holding `records` (zone-file data,
    /// e.g. from `ZoneFile.load`): the records of the name and type asked, CNAME chains inside
    /// the data followed in the answer section, NODATA for names that exist (or have names
    /// below them), NXDOMAIN otherwise, with the SOA of the closest enclosing zone in the
    /// authority section for negative answers. Lets tests run the same data through the
    /// network resolver as through `ZoneResolver`.
    package static func authoritative(records: [DNSRecord], maximumChain: Int = 8) -> DNSServerScript {
        let byName = Dictionary(grouping: records, by: { $0.name.lowercased() })
        let owners = Set(byName.keys)
        let zones = records.filter { $0.type == .soa }

        @Sendable func exists(_ name: String) -> Bool {
            if owners.contains(name) { return true }
            let suffix = "." + name
            return owners.contains { $0.hasSuffix(suffix) }
        }

        @Sendable func enclosingSOA(_ name: String) -> DNSResourceRecord? {
            let candidates = zones.filter { $0.name.isEmpty || name == $0.name || name.hasSuffix("." + $0.name) }
            guard let zone = candidates.max(by: { $0.name.count < $1.name.count }) else { return nil }
            return DNSResourceRecord(name: zone.name, ttl: zone.ttl, data: zone.data)
        }

        return { query, _ in
            guard let question = query.questions.first else { return [] }
            var answers: [DNSResourceRecord] = []
            var name = question.name
            var seen: Set<String> = [name]
            while true {
                let here = byName[name] ?? []
                let matching = here.filter { $0.type == question.type }
                if !matching.isEmpty {
                    answers += matching.map { DNSResourceRecord(name: $0.name, ttl: $0.ttl, data: $0.data) }
                    return [.send(Self.reply(to: query, answers: answers))]
                }
                guard question.type != .cname, answers.count < maximumChain,
                      let alias = here.first(where: { $0.type == .cname }), case .cname(let target) = alias.data,
                      seen.insert(target).inserted else { break }
                answers.append(DNSResourceRecord(name: alias.name, ttl: alias.ttl, data: alias.data))
                name = target
            }
            let rcode: DNSResponseCode = exists(name) ? .noError : .nxDomain
            let authority = enclosingSOA(name).map { [$0] } ?? []
            return [.send(Self.reply(to: query, rcode: rcode, answers: answers, authority: authority))]
        }
    }
}
