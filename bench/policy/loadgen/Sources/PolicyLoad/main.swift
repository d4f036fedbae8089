// PolicyLoad: a load generator for Postfix SMTPD policy servers (vrules serve, postfwd).
//
// One TCP connection per simulated smtpd process, one request at a time per connection
// (Postfix waits for each answer), requests as Postfix 3.7 sends them. Prints one
// `key=value` line per run for bench/policy/run.sh and spf-run.sh to read.
//
//   PolicyLoad --port P [--host 127.0.0.1] | --unix PATH  [--connections 16] [--requests N] [--mix postfix|fresh]
//              [--client-ip 192.0.2.10] [--client-name NAME] [--helo NAME]
//              [--sender-domain good.example] [--expect DUNNO] [--accept ANSWER]...
//              [--prime] [--server-pid PID] [--label NAME] [--io epoll|threads]
//
// --io: `epoll` (the default) serves every connection from one thread that waits on all of
// them, sending a connection's next request when its answer is read; `threads` gives each
// connection a thread and a blocking socket, as Postfix's smtpd processes are. The load on the
// server is the same (one request in flight per connection); what differs is the generator's
// own CPU on the cores it shares with the server: measured 7.4–7.8 against 9.3–10.0 µs per
// request (2026-11-29), most of the difference the thread switch per answer.
//
// --sender-domain: the domain of every sender; `{t}` in it stands for a label of its own for
// each transaction (`{t}.spf.example` -> t3-1f.spf.example), for a zone with a wildcard.
//
// --prime: each connection first sends one transaction (RCPT, END-OF-MESSAGE) before the clock
// and the CPU counters start, so a server that starts a process per connection (policyd-spf
// under socat or spawn(8)) is measured after its start-up, not during it.
//
// Expected answers: without --accept, --expect (default DUNNO; with DUNNO a `PREPEND ...`
// answer counts too, as a header rides on an answer that would be DUNNO). With --accept
// (repeatable), only the answers given: exactly, or by prefix when ANSWER ends in `*`
// (`--accept 'PREPEND Received-SPF: pass *' --accept DUNNO`); the line then also carries
// `accepted=N1/N2/...`, how many answers matched each --accept in order. Any other answer is
// counted in `unexpected` and the first one is printed as `first_unexpected_action=`.
//
// Mixes (every transaction has its own `instance`, client port and sender):
//   postfix  what Postfix sends with check_policy_service in smtpd_relay_restrictions,
//            smtpd_recipient_restrictions and smtpd_end_of_data_restrictions, two recipients
//            per message: RCPT r1, RCPT r1 (identical), RCPT r2, RCPT r2 (identical),
//            END-OF-MESSAGE. Rules run for the first request of each recipient (connect, helo,
//            mail, rcpt, then rcpt); the repeats are answered from the server's per-instance
//            memory (vrules) or request cache (postfwd); END-OF-MESSAGE ends the transaction.
//   noeom    the same without END-OF-MESSAGE (the policy service not named in
//            smtpd_end_of_data_restrictions, the common case): the server must forget
//            transactions on its own.
//   fresh    RCPT then END-OF-MESSAGE: connect, helo, mail and rcpt rules all run for every
//            RCPT request (the worst case for a policy server).
#if canImport(Glibc)
import Glibc
#endif
import CEpoll

// MARK: - options

struct Options {
    var host = "127.0.0.1"
    var port = 10040
    /// `--unix PATH`: a UNIX-domain stream socket instead of TCP to host and port.
    var unixPath: String?
    var connections = 16
    var requests = 100_000
    var mix = "postfix"
    var clientIP = "192.0.2.10"
    var clientName = "mail.good.example"
    var helo = "mail.good.example"
    var senderDomain = "good.example"
    var expect = "DUNNO"
    /// `--accept` patterns; when not empty they replace `expect`.
    var accept: [AnswerPattern] = []
    var serverPID: Int32 = 0
    var label = "run"
    var prime = false
    /// `epoll`: one thread waits on every connection; `threads`: a thread per connection.
    var io = "epoll"
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst().makeIterator()
    func value(_ flag: String) -> String {
        guard let value = arguments.next() else { fail("\(flag) needs a value") }
        return value
    }
    while let flag = arguments.next() {
        switch flag {
        case "--host": options.host = value(flag)
        case "--port": options.port = Int(value(flag)) ?? options.port
        case "--unix": options.unixPath = value(flag)
        case "--connections": options.connections = max(1, Int(value(flag)) ?? 16)
        case "--requests": options.requests = max(1, Int(value(flag)) ?? 100_000)
        case "--mix": options.mix = value(flag)
        case "--client-ip": options.clientIP = value(flag)
        case "--client-name": options.clientName = value(flag)
        case "--helo": options.helo = value(flag)
        case "--sender-domain": options.senderDomain = value(flag)
        case "--expect": options.expect = value(flag)
        case "--accept": options.accept.append(AnswerPattern(value(flag)))
        case "--server-pid": options.serverPID = Int32(value(flag)) ?? 0
        case "--label": options.label = value(flag)
        case "--prime": options.prime = true
        case "--io": options.io = value(flag)
        default: fail("unknown option \(flag)")
        }
    }
    guard ["fresh", "postfix", "noeom"].contains(options.mix) else { fail("--mix: postfix, noeom or fresh") }
    guard ["epoll", "threads"].contains(options.io) else { fail("--io: epoll or threads") }
    return options
}

/// An expected answer: the whole text, or a prefix when given with a trailing `*`. Matched
/// against the answer's bytes (`action=` and the text), so an expected answer makes no string.
struct AnswerPattern {
    let text: String
    let isPrefix: Bool
    /// `action=` followed by `text`, as the server sends it.
    let line: [UInt8]

    init(_ pattern: String) {
        self.isPrefix = pattern.hasSuffix("*")
        self.text = self.isPrefix ? String(pattern.dropLast()) : pattern
        self.line = Array("action=\(self.text)".utf8)
    }

    /// Whether the answer line `answer` (up to, not including, its empty line) matches.
    func matches(_ answer: UnsafeBufferPointer<UInt8>) -> Bool {
        guard self.isPrefix ? answer.count >= self.line.count : answer.count == self.line.count else { return false }
        return self.line.withUnsafeBufferPointer { line in
            memcmp(line.baseAddress!, answer.baseAddress!, line.count) == 0
        }
    }
}

func fail(_ message: String) -> Never {
    fputs("PolicyLoad: \(message)\n", stderr)
    exit(2)
}

@inline(__always) func nowNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

// MARK: - requests

/// The attributes Postfix 3.7 sends for an RCPT request, in its order. Empty attributes are
/// sent as Postfix sends them (`name=`). Built as bytes, without growing a `String`: the
/// generator shares the cores with the server it measures, so its own work is kept small.
func rcptRequest(_ options: Options, instance: String, clientPort: Int, sender: String, recipient: String,
                 state: String = "RCPT") -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(1_024)
    func add(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }
    func add(_ text: String) { bytes.append(contentsOf: text.utf8) }
    add("request=smtpd_access_policy\nprotocol_state="); add(state)
    add("\nprotocol_name=ESMTP\nhelo_name="); add(options.helo)
    add("\nqueue_id=\nsender="); add(sender)
    add("\nrecipient="); add(recipient)
    add(state == "RCPT" ? "\nrecipient_count=0\nclient_address=" : "\nrecipient_count=2\nclient_address=")
    add(options.clientIP)
    add("\nclient_name="); add(options.clientName)
    add("\nreverse_client_name="); add(options.clientName)
    add("\ninstance="); add(instance)
    add("\nsasl_method=\nsasl_username=\nsasl_sender=\nsize=0\n")
    add("ccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n")
    add("encryption_protocol=\nencryption_cipher=\nencryption_keysize=0\n")
    add("etrn_domain=\nstress=\nclient_port="); add(String(clientPort))
    add("\npolicy_context=\nserver_address=127.0.0.1\nserver_port=25\n")
    add("compatibility_level=3.6\nmail_version=3.7.11\n\n")
    return bytes
}

/// A stream socket connected to the UNIX-domain socket at `path`, as Postfix reaches a
/// `check_policy_service unix:private/...` service.
func connectUnix(_ path: String) -> Int32 {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard path.utf8.count < capacity else { fail("--unix: path longer than \(capacity - 1) bytes") }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (offset, byte) in path.utf8.enumerated() { raw[offset] = byte }
    }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard fd >= 0, connected == 0 else { fail("cannot connect to unix:\(path): errno \(errno)") }
    var timeout = timeval(tv_sec: 30, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

// MARK: - one connection

final class Worker {
    let index: Int
    let options: Options
    let runID: String
    let count: Int
    /// Latencies in nanoseconds: [0] requests that run rules, [1] repeats and END-OF-MESSAGE.
    var latencies: [[UInt64]] = [[], []]
    var unexpected = 0
    /// Answers matching each `--accept` pattern, in order.
    var accepted: [Int]
    var firstUnexpected: String?
    var closed = false
    var finished: UInt64 = 0
    private(set) var descriptor: Int32 = -1
    private var buffer = [UInt8](repeating: 0, count: 65_536)
    private var filled = 0
    /// The answers counted as expected: the `--accept` patterns, else `--expect` (and, for
    /// DUNNO, any `PREPEND ` answer: a header rides on an answer that would be DUNNO).
    private let patterns: [AnswerPattern]

    init(index: Int, options: Options, runID: String, count: Int) {
        self.index = index
        self.options = options
        self.runID = runID
        self.count = count
        self.accepted = [Int](repeating: 0, count: options.accept.count)
        if !options.accept.isEmpty {
            self.patterns = options.accept
        } else if options.expect == "DUNNO" {
            self.patterns = [AnswerPattern(options.expect), AnswerPattern("PREPEND *")]
        } else {
            self.patterns = [AnswerPattern(options.expect)]
        }
        self.latencies[0].reserveCapacity(count)
        self.latencies[1].reserveCapacity(count)
    }

    func connectNow() {
        if let path = self.options.unixPath {
            self.descriptor = connectUnix(path)
            return
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICHOST
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(self.options.host, String(self.options.port), &hints, &result) == 0, let info = result else {
            fail("cannot resolve \(self.options.host)")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0, connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            fail("cannot connect to \(self.options.host):\(self.options.port): errno \(errno)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        self.descriptor = fd
    }

    /// One transaction outside the measurement (`--prime`): the server's start-up for this
    /// connection is over when it answers.
    func prime() {
        let instance = "\(self.runID).\(String(self.index, radix: 16)).prime"
        let label = "p\(self.runID)-\(String(self.index, radix: 16))"
        let sender = "prime-\(self.index)@" + self.options.senderDomain.replacing("{t}", with: label)
        let port = 10_000 + self.index
        let requests = [
            rcptRequest(self.options, instance: instance, clientPort: port, sender: sender, recipient: "bob@implicit.example"),
            rcptRequest(self.options, instance: instance, clientPort: port, sender: sender, recipient: "", state: "END-OF-MESSAGE"),
        ]
        for request in requests where self.ask(request) == nil {
            fail("connection \(self.index) closed while priming")
        }
    }

    /// Sends one request and reads `action=...\n\n`; returns the action, nil when closed.
    func ask(_ request: [UInt8]) -> String? {
        guard let end = self.exchange(request) else { return nil }
        return self.action(end: end)
    }

    /// Sends one request and reads its answer; the answer's length (before its empty line),
    /// nil when the connection closed.
    private func exchange(_ request: [UInt8]) -> Int? {
        guard self.send(request) else { return nil }
        while true {
            if let end = self.answerEnd() { return end }
            let received = self.buffer.withUnsafeMutableBytes {
                recv(self.descriptor, $0.baseAddress! + self.filled, $0.count - self.filled, 0)
            }
            if received <= 0 { return nil }
            self.filled += received
        }
    }

    /// Sends all of `request` and clears the answer buffer; false when the connection is closed.
    private func send(_ request: [UInt8]) -> Bool {
        var offset = 0
        while offset < request.count {
            let sent = request.withUnsafeBytes {
                Glibc.send(self.descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent <= 0 { return false }
            offset += sent
        }
        self.filled = 0
        return true
    }

    /// Where the answer read so far ends (Postfix reads up to the empty line: "\n\n"), nil
    /// while it is incomplete.
    private func answerEnd() -> Int? {
        guard self.filled >= 2 else { return nil }
        return self.buffer.withUnsafeBufferPointer { bytes -> Int? in
            var i = 0
            while i + 1 < self.filled {
                if bytes[i] == 10 && bytes[i + 1] == 10 { return i }
                i += 1
            }
            return nil
        }
    }

    /// The action of the answer of length `end`, as text (for unexpected answers and --prime).
    private func action(end: Int) -> String {
        let answer = String(decoding: self.buffer[0..<end], as: UTF8.self)
        return answer.hasPrefix("action=") ? String(answer.dropFirst(7)) : answer
    }

    /// The requests of transaction number `transaction` of this connection, each with its
    /// latency class (0: rules run, 1: a repeat or END-OF-MESSAGE).
    private func plan(of transaction: Int) -> [([UInt8], Int)] {
        let instance = "\(self.runID).\(String(self.index, radix: 16)).\(String(transaction, radix: 16)).0"
        let port = 20_000 + self.index * 2_500 + transaction % 2_500
        let label = "t\(String(self.index, radix: 16))-\(String(transaction, radix: 16))"
        let sender = "bounce-\(self.index)-\(transaction)@" + self.options.senderDomain.replacing("{t}", with: label)
        let first = rcptRequest(self.options, instance: instance, clientPort: port, sender: sender,
                                recipient: "bob@implicit.example")
        let end = rcptRequest(self.options, instance: instance, clientPort: port, sender: sender,
                              recipient: "", state: "END-OF-MESSAGE")
        if self.options.mix == "fresh" { return [(first, 0), (end, 1)] }
        let second = rcptRequest(self.options, instance: instance, clientPort: port, sender: sender,
                                 recipient: "carol@good.example")
        var plan = [(first, 0), (first, 1), (second, 0), (second, 1)]
        if self.options.mix == "postfix" { plan.append((end, 1)) }
        return plan
    }

    /// Files the answer of length `end`: its latency, and which pattern it matched (or, for an
    /// unexpected one, its text if it is the first).
    private func record(end: Int, kind: Int, elapsed: UInt64) {
        self.latencies[kind].append(elapsed)
        let matched = self.buffer.withUnsafeBufferPointer { bytes in
            let answer = UnsafeBufferPointer(rebasing: bytes[0..<end])
            return self.patterns.firstIndex { $0.matches(answer) }
        }
        if let matched {
            if !self.options.accept.isEmpty { self.accepted[matched] += 1 }
        } else {
            self.unexpected += 1
            if self.firstUnexpected == nil { self.firstUnexpected = self.action(end: end) }
        }
        self.done += 1
    }

    private func close(now: UInt64) {
        self.closed = true
        self.finished = now
    }

    // MARK: blocking (--io threads): this connection's share on a thread of its own

    func run() {
        while self.done < self.count {
            for (request, kind) in self.plan(of: self.transaction) where self.done < self.count {
                let started = nowNanoseconds()
                guard let end = self.exchange(request) else {
                    self.close(now: nowNanoseconds())
                    return
                }
                self.record(end: end, kind: kind, elapsed: nowNanoseconds() - started)
            }
            self.transaction += 1
        }
        self.finished = nowNanoseconds()
    }

    // MARK: event-driven (--io epoll): one thread serves every connection

    private var done = 0
    private var transaction = 0
    private var currentPlan: [([UInt8], Int)] = []
    private var step = 0
    private var sentAt: UInt64 = 0

    /// Sends the next request; false when this connection's share is done or it closed.
    func sendNext() -> Bool {
        let now = nowNanoseconds()
        guard self.done < self.count else {
            self.finished = now
            return false
        }
        if self.step == self.currentPlan.count {
            self.currentPlan = self.plan(of: self.transaction)
            self.transaction += 1
            self.step = 0
        }
        self.sentAt = now
        guard self.send(self.currentPlan[self.step].0) else {
            self.close(now: now)
            return false
        }
        return true
    }

    /// Reads what has arrived (the socket is readable) and sends the next request once the
    /// answer is complete; false when this connection is done.
    func readable() -> Bool {
        let received = self.buffer.withUnsafeMutableBytes {
            recv(self.descriptor, $0.baseAddress! + self.filled, $0.count - self.filled, Int32(MSG_DONTWAIT))
        }
        if received < 0 && (errno == EAGAIN || errno == EINTR) { return true }
        guard received > 0 else {
            self.close(now: nowNanoseconds())
            return false
        }
        self.filled += received
        guard let end = self.answerEnd() else { return true }
        self.record(end: end, kind: self.currentPlan[self.step].1, elapsed: nowNanoseconds() - self.sentAt)
        self.step += 1
        return self.sendNext()
    }

    /// Marks an unanswered connection closed (no answer within the timeout).
    func abandon() {
        self.close(now: nowNanoseconds())
    }

    /// Closed only after the server's CPU time is read: a process the server runs per
    /// connection may end with it and be orphaned before its parent reaps it (policyd-spf under
    /// socat without `nofork`, behind a relay that exits first), taking its CPU time out of the
    /// server's process tree.
    func closeConnection() {
        if self.descriptor >= 0 { Glibc.close(self.descriptor) }
        self.descriptor = -1
    }

}

// MARK: - CPU of the server's process tree

/// CPU time in clock ticks, in user space and in the kernel (system calls, wake-ups,
/// interrupts taken while running).
struct CPUTicks {
    var user = 0
    var system = 0

    var total: Int { self.user + self.system }

    static func - (after: CPUTicks, before: CPUTicks) -> CPUTicks {
        CPUTicks(user: after.user - before.user, system: after.system - before.system)
    }
}

/// utime and stime (+ cutime and cstime for the root: reaped children, e.g. postfwd's
/// recycled preforked workers) of `root` and its live descendants.
func treeCPUTicks(root: Int32) -> CPUTicks {
    guard root > 0 else { return CPUTicks() }
    var parents: [Int32: Int32] = [:]
    var ticks: [Int32: (own: CPUTicks, children: CPUTicks)] = [:]
    guard let directory = opendir("/proc") else { return CPUTicks() }
    defer { closedir(directory) }
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        guard let pid = Int32(name) else { continue }
        guard let stat = readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] = state (field 3); ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
        guard fields.count > 15, let ppid = Int32(fields[1]), let utime = Int(fields[11]), let stime = Int(fields[12]),
              let cutime = Int(fields[13]), let cstime = Int(fields[14]) else { continue }
        parents[pid] = ppid
        ticks[pid] = (CPUTicks(user: utime, system: stime), CPUTicks(user: cutime, system: cstime))
    }
    var total = CPUTicks()
    for (pid, value) in ticks {
        var cursor = pid
        var inTree = false
        var hops = 0
        while hops < 64 {
            if cursor == root { inTree = true; break }
            guard let parent = parents[cursor], parent > 1 else { break }
            cursor = parent
            hops += 1
        }
        guard inTree else { continue }
        total.user += value.own.user + (pid == root ? value.children.user : 0)
        total.system += value.own.system + (pid == root ? value.children.system : 0)
    }
    return total
}

func readFile(_ path: String, capacity: Int = 4096) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: capacity)
    let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return nil }
    return String(decoding: bytes[0..<count], as: UTF8.self)
}

func rssKB(_ pid: Int32) -> Int {
    guard pid > 0, let status = readFile("/proc/\(pid)/status", capacity: 8192) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
    return 0
}

/// Samples the server's RSS every 250 ms while the load runs.
final class RSSSampler {
    let pid: Int32
    var samples: [Int] = []
    var stop = false
    var lock = pthread_mutex_t()
    init(pid: Int32) {
        self.pid = pid
        pthread_mutex_init(&self.lock, nil)
    }
    func run() {
        while true {
            pthread_mutex_lock(&self.lock)
            let done = self.stop
            pthread_mutex_unlock(&self.lock)
            let value = rssKB(self.pid)
            pthread_mutex_lock(&self.lock)
            self.samples.append(value)
            pthread_mutex_unlock(&self.lock)
            if done { return }
            usleep(250_000)
        }
    }
    func finish() {
        pthread_mutex_lock(&self.lock)
        self.stop = true
        pthread_mutex_unlock(&self.lock)
    }
}

func ownCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

// MARK: - run

func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = min(sorted.count - 1, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1)
    return Double(sorted[max(0, rank)]) / 1000
}

let options = parseOptions()
let runID = String(UInt32(truncatingIfNeeded: nowNanoseconds() / 1000) ^ UInt32(getpid()), radix: 16)
var workers: [Worker] = []
for index in 0..<options.connections {
    let share = options.requests / options.connections + (index < options.requests % options.connections ? 1 : 0)
    let worker = Worker(index: index, options: options, runID: runID, count: share)
    worker.connectNow()
    workers.append(worker)
}
if options.prime {
    for worker in workers { worker.prime() }
}

let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
let serverTicksBefore = treeCPUTicks(root: options.serverPID)
let cpuBefore = ownCPUSeconds()
let started = nowNanoseconds()
/// Runs every connection's share on this thread: each request is sent when the answer to
/// the one before it is read.
func runWithEpoll(_ workers: [Worker]) {
    let poller = epoll_create1(Int32(EPOLL_CLOEXEC))
    guard poller >= 0 else { fail("epoll_create1: errno \(errno)") }
    defer { close(poller) }
    var active = 0
    for (index, worker) in workers.enumerated() {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u32 = UInt32(index)
        guard epoll_ctl(poller, EPOLL_CTL_ADD, worker.descriptor, &event) == 0 else { fail("epoll_ctl: errno \(errno)") }
        if worker.sendNext() { active += 1 } else { epoll_ctl(poller, EPOLL_CTL_DEL, worker.descriptor, nil) }
    }
    var events = [epoll_event](repeating: epoll_event(), count: workers.count)
    while active > 0 {
        let ready = epoll_wait(poller, &events, Int32(events.count), 30_000)
        if ready < 0 && errno == EINTR { continue }
        guard ready > 0 else {
            // Nothing answered for 30 s: what is still waiting counts as closed.
            for worker in workers where worker.finished == 0 { worker.abandon() }
            return
        }
        for event in events[0..<Int(ready)] {
            let worker = workers[Int(event.data.u32)]
            if !worker.readable() {
                epoll_ctl(poller, EPOLL_CTL_DEL, worker.descriptor, nil)
                active -= 1
            }
        }
    }
}

var threads: [pthread_t] = []
if options.io == "threads" {
    for worker in workers {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(worker).toOpaque()
        let result = pthread_create(&thread, nil, { argument in
            let worker = Unmanaged<Worker>.fromOpaque(argument!).takeRetainedValue()
            worker.run()
            return nil
        }, box)
        guard result == 0 else { fail("pthread_create: \(result)") }
        threads.append(thread)
    }
}
let sampler = RSSSampler(pid: options.serverPID)
var samplerThread = pthread_t()
if options.serverPID > 0 {
    pthread_create(&samplerThread, nil, { argument in
        Unmanaged<RSSSampler>.fromOpaque(argument!).takeUnretainedValue().run()
        return nil
    }, Unmanaged.passUnretained(sampler).toOpaque())
}
if options.io == "epoll" { runWithEpoll(workers) }
for thread in threads { pthread_join(thread, nil) }
if options.serverPID > 0 {
    sampler.finish()
    pthread_join(samplerThread, nil)
}
let wall = Double((workers.map(\.finished).max() ?? started) - started) / 1e9
let cpuAfter = ownCPUSeconds()
let serverTicksAfter = treeCPUTicks(root: options.serverPID)
for worker in workers { worker.closeConnection() }

var all: [UInt64] = []
var ruled: [UInt64] = []
var repeats: [UInt64] = []
for worker in workers {
    ruled += worker.latencies[0]
    repeats += worker.latencies[1]
}
all = ruled + repeats
all.sort()
ruled.sort()
repeats.sort()
let answered = all.count
let unexpected = workers.reduce(0) { $0 + $1.unexpected }
let closedCount = workers.filter(\.closed).count
let generatorCPU = cpuAfter - cpuBefore
let serverTicks = serverTicksAfter - serverTicksBefore
let serverCPU = Double(serverTicks.total) / ticksPerSecond

func fmt(_ value: Double, _ digits: Int = 1) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return "\(rounded)"
}

var line = "label=\(options.label) mix=\(options.mix) connections=\(options.connections) requests=\(answered)"
line += " seconds=\(fmt(wall, 2)) rps=\(Int((Double(answered) / max(wall, 1e-9)).rounded()))"
line += " p50_ms=\(fmt(percentile(all, 50) / 1000, 3)) p90_ms=\(fmt(percentile(all, 90) / 1000, 3))"
line += " p99_ms=\(fmt(percentile(all, 99) / 1000, 3)) p999_ms=\(fmt(percentile(all, 99.9) / 1000, 3))"
line += " max_ms=\(fmt(Double(all.last ?? 0) / 1e6, 3))"
line += " rules_p50_ms=\(fmt(percentile(ruled, 50) / 1000, 3)) rules_p99_ms=\(fmt(percentile(ruled, 99) / 1000, 3))"
if !repeats.isEmpty {
    line += " repeat_p50_ms=\(fmt(percentile(repeats, 50) / 1000, 3)) repeat_p99_ms=\(fmt(percentile(repeats, 99) / 1000, 3))"
}
line += " unexpected=\(unexpected) closed=\(closedCount)"
if !options.accept.isEmpty {
    let counts = options.accept.indices.map { index in workers.reduce(0) { $0 + $1.accepted[index] } }
    line += " accepted=" + counts.map(String.init).joined(separator: "/")
}
line += " gen_cpu_s=\(fmt(generatorCPU, 2)) gen_cpu_pct=\(fmt(100 * generatorCPU / max(wall, 1e-9)))"
line += " gen_us_per_req=\(fmt(1e6 * generatorCPU / Double(max(answered, 1)), 1))"
if options.serverPID > 0 {
    line += " server_cpu_s=\(fmt(serverCPU, 2)) server_cpu_pct=\(fmt(100 * serverCPU / max(wall, 1e-9)))"
    line += " server_us_per_req=\(fmt(1e6 * serverCPU / Double(max(answered, 1)), 1))"
    // The same split into user space and kernel (utime and stime).
    let perRequest = { (ticks: Int) in fmt(1e6 * Double(ticks) / ticksPerSecond / Double(max(answered, 1)), 1) }
    line += " server_user_us_per_req=\(perRequest(serverTicks.user)) server_sys_us_per_req=\(perRequest(serverTicks.system))"
    // The server's RSS at 0, 10, ..., 100 % of the run (the server process itself, not its children).
    let samples = sampler.samples
    if !samples.isEmpty {
        let picks = (0...10).map { samples[min(samples.count - 1, $0 * (samples.count - 1) / 10)] }
        line += " rss_trace_kb=" + picks.map(String.init).joined(separator: ",")
    }
}
print(line)
if let sample = workers.compactMap(\.firstUnexpected).first {
    print("first_unexpected_action=\(sample)")
}
exit(unexpected == 0 && closedCount == 0 && answered == options.requests ? 0 : 1)
