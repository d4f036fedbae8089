/// When a connection may read: one request in flight, as NIO's
/// `HTTPServerPipelineHandler` keeps it. While more than `readsAhead` requests are
/// unanswered, a `read()` is held back (a peer that sends faster than it is answered fills
/// its own socket buffer, not the server's memory; what one read already brought in is all
/// the server ever buffers), and the answer that makes room lets it go.
///
/// With `readsAhead` 1 (the server's setting) one more read may go out while a single
/// request is unanswered: a client that waits for each answer, as Postfix does, then never
/// has its reads held and released, which would cost NIO two `epoll_ctl` calls per request;
/// a client that pipelines is held back as soon as a second request is read.
struct ReadGate {
    let readsAhead: Int
    /// Requests taken and not answered yet.
    private(set) var unanswered = 0
    /// A `read()` asked for while too many requests were unanswered.
    private var readHeldBack = false

    init(readsAhead: Int = 0) {
        self.readsAhead = max(0, readsAhead)
    }

    mutating func requestTaken() {
        self.unanswered += 1
    }

    /// Whether a `read()` asked for now may go out; if not, it is held back.
    mutating func mayRead() -> Bool {
        if self.unanswered > self.readsAhead {
            self.readHeldBack = true
            return false
        }
        return true
    }

    /// A request was answered: whether a read held back may go out now.
    mutating func answered() -> Bool {
        self.unanswered = max(0, self.unanswered - 1)
        guard self.readHeldBack && self.unanswered <= self.readsAhead else { return false }
        self.readHeldBack = false
        return true
    }
}
