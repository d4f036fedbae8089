import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Rules

/// Turns policy requests into stage evaluations. Holds the transactions Postfix's
/// `instance` ties together, so that `ctx.vars` lives across a message's requests, a
/// stage runs once however many restriction lists ask, and, with Postfix's default
/// `smtpd_delay_reject = yes`, the stages before RCPT still run, in order, first.
///
/// One shard per engine (one Lua state per core): a slow stage delays only its own
/// state's work, and every core runs rules. An SMTP connection's transactions stay on one
/// shard. A connection not seen before goes to the shard whose engine runs on the event
/// loop the request was read on, when there is one (`vrules serve`), so that a request is
/// decoded, decided and answered on one thread; otherwise to a shard chosen by a hash of
/// the connection.
public final class PolicyService: Sendable {
    public struct Configuration: Sendable {
        /// What `accept()` answers: `DUNNO` (the default: Postfix's own restrictions still
        /// apply) or `OK` (the rules' accept is final for that restriction list).
        public var acceptAction: String
        /// A transaction not asked about for this long is forgotten (checked on a timer).
        public var transactionTimeout: Double
        /// At most this many transactions are kept; the least recently used go first.
        public var maximumTransactions: Int
        /// At most this many bytes of the Lua state are held by transactions' `ctx`
        /// (estimated by `TransactionCost`); the least recently used idle ones are evicted
        /// beyond it. One transaction may hold at most a sixteenth of it.
        public var transactionMemory: Int
        /// Recipients one transaction may collect in `ctx.rcpts`: Postfix's own
        /// `smtpd_recipient_limit` default. A recipient past it (or past the transaction's
        /// share of `transactionMemory`) is answered `452 4.5.3`, without running rules, so
        /// the client sends it in another transaction.
        public var maximumRecipients: Int
        /// The answer to a `protocol_state` vrules does not know: a temporary failure by
        /// default, so nothing is let through unchecked.
        public var unknownStateAction: String
        /// A refusal (any `4NN`/`5NN` answer: the rules', a recipient past the bounds, an
        /// unknown state's) is logged and counted, and answered `DUNNO` instead: the rules are
        /// watched on live mail before they refuse any. What vrules holds of the transaction
        /// is what it would hold if the refusal had been sent (a refused recipient is not in
        /// `ctx.rcpts`), so later stages decide as they will once the rules are enforced.
        /// A reload may change it (`PolicyService.apply`).
        public var dryRun: Bool
        /// Called with each stage the rules evaluate (not one whose result an identical
        /// request reuses) and the request it was evaluated for: `PolicyReplay` shows every
        /// stage a request ran, not only the one that gave the answer.
        var stageObserver: (@Sendable (StageResult, PolicyRequest) -> Void)?
        /// Called after each request answered within a transaction with that transaction's
        /// `ctx.vars` as text (before END-OF-MESSAGE ends it): what a test of requests checks.
        var varsObserver: (@Sendable ([String: String]) -> Void)?

        public static let defaultUnknownStateAction = "451 4.3.0 Unknown policy protocol state, try again later"

        public init(acceptAction: String = "DUNNO", transactionTimeout: Double = 300, maximumTransactions: Int = 20_000,
                    transactionMemory: Int = 16 << 20, maximumRecipients: Int = RecipientLimit.defaultMaximum,
                    unknownStateAction: String = Configuration.defaultUnknownStateAction, dryRun: Bool = false) {
            self.acceptAction = acceptAction
            self.transactionTimeout = transactionTimeout
            self.maximumTransactions = maximumTransactions
            self.transactionMemory = transactionMemory
            self.maximumRecipients = maximumRecipients
            self.unknownStateAction = unknownStateAction
            self.dryRun = dryRun
        }

        /// The bytes one transaction may hold.
        var transactionShare: Int { RecipientLimit.share(ofTransactionMemory: self.transactionMemory) }
    }

    private let shards: [PolicyShard]
    private let engines: [RuleEngine]
    /// One element each time a shard finds its Lua state full of the rules' own data; read
    /// by `ReloadService`, which loads the engines again. Requests made while one is waiting
    /// fold into it.
    public let restartRequests: AsyncStream<Void>
    private let routes: ConnectionRoutes
    private let totals: ShardTotals
    private let configuration: Configuration

    public convenience init(engine: RuleEngine, configuration: Configuration = Configuration(),
                            logger: Logger = Logger(label: "vrules.policy")) {
        self.init(engines: [engine], configuration: configuration, logger: logger)
    }

    /// Several engines loaded from the same script, one shard each.
    /// `transactionMemory` applies to each engine's Lua state.
    public init(engines: [RuleEngine], configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "vrules.policy")) {
        precondition(!engines.isEmpty, "at least one engine")
        let routes = ConnectionRoutes()
        let totals = ShardTotals(shardCount: engines.count)
        self.engines = engines
        self.routes = routes
        self.totals = totals
        self.configuration = configuration
        let (requests, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.restartRequests = requests
        self.shards = engines.enumerated().map { index, engine in
            PolicyShard(index: index, engine: engine, configuration: configuration, logger: logger, routes: routes, totals: totals,
                        requestRestart: { continuation.yield() })
        }
    }

    /// The answer to one request (already checked to be `request=smtpd_access_policy`
    /// with a `client_address`). `shard` is where a connection not seen before goes
    /// (`shard(runningOn:)` of the loop the request was read on); nil: by hash.
    public func decide(_ request: PolicyRequest, preferring shard: Int? = nil) async -> PolicyDecision {
        let key = TransactionKey(request)
        let index = self.routes.enter(key.connection, preferring: shard ?? self.hashedShard(for: key.connection))
        defer { self.routes.release(key.connection) }
        return await self.shards[index].decide(request, key: key)
    }

    /// Decides `request`, read on `loop`: returns the decision when it is made at once,
    /// otherwise hands it to `answer` on `loop` later. `loopShard` is `shard(runningOn:
    /// loop)`. When the connection's shard is that one (its engine runs on `loop`, and so
    /// does this call), a request is decided here, on the loop, with no task: a repeat from
    /// what its transaction holds (`PolicyShard.settledDecision`), any other by running its
    /// stages (`PolicyShard.decideNow`). Only a stage that waits for DNS answers goes on in a
    /// task isolated to the shard: enqueued on the loop, it reaches the shard and the engine
    /// without a hop and calls `answer` itself. On another shard the decision runs in a task
    /// of its own and `answer` is sent to `loop`.
    func decide(_ request: PolicyRequest, readOn loop: any EventLoop, loopShard: Int?,
                answer: @escaping @Sendable (PolicyDecision) -> Void) -> PolicyDecision? {
        let key = TransactionKey(request)
        let connection = key.connection
        let index = self.routes.enter(connection, preferring: loopShard ?? self.hashedShard(for: connection))
        let routes = self.routes
        let shard = self.shards[index]
        if index == loopShard {
            return shard.assumeIsolatedByConstruction { shard in
                if let decision = shard.settledDecision(request, key: key) {
                    routes.release(connection)
                    return decision
                }
                switch shard.decideNow(request, key: key) {
                case .decided(let decision):
                    routes.release(connection)
                    return decision
                case .waiting(let pending):
                    shard.startCompletion(pending) { decision in
                        routes.release(connection)
                        answer(decision)
                    }
                    return nil
                }
            }
        } else {
            Task(executorPreference: shard.taskExecutor) {
                let decision = await shard.decide(request, key: key)
                routes.release(connection)
                loop.execute { answer(decision) }
            }
            return nil
        }
    }

    /// The shard whose engine runs on `loop`, if any.
    public func shard(runningOn loop: any EventLoop) -> Int? {
        self.engines.firstIndex { engine in
            if let executor = engine.executor as? EventLoopExecutor { return executor.loop === loop }
            return (engine.executor as AnyObject) === (loop as AnyObject)
        }
    }

    /// The shard a connection's transactions are on, if it holds any.
    func shardIndex(of connection: ConnectionKey) -> Int? { self.routes.shard(of: connection) }

    /// FNV-1a of the connection's key: the same for every request of the connection.
    func hashedShard(for connection: ConnectionKey) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in connection.description.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(self.shards.count))
    }

    /// New transactions use `engines`, one per shard, each on the executor of the engine it
    /// replaces (a shard calls its engine without a hop); those in progress finish on the
    /// one they began on.
    /// The `[policy]` settings a reload applies: how requests are answered, not what the
    /// server made at start (its listeners and their connection cap).
    public struct ReloadedSettings: Sendable, Equatable {
        public var maximumRecipients: Int
        public var unknownStateAction: String
        public var dryRun: Bool

        public init(maximumRecipients: Int = RecipientLimit.defaultMaximum,
                    unknownStateAction: String = Configuration.defaultUnknownStateAction, dryRun: Bool = false) {
            self.maximumRecipients = maximumRecipients
            self.unknownStateAction = unknownStateAction
            self.dryRun = dryRun
        }
    }

    /// Applies `settings` to every request from now on (a recipient already held stays).
    public func apply(_ settings: ReloadedSettings) async {
        for shard in self.shards { await shard.apply(settings) }
    }

    public func replaceEngines(_ engines: [RuleEngine]) async {
        precondition(engines.count == self.shards.count, "one engine per shard")
        for (shard, engine) in zip(self.shards, engines) {
            await shard.replaceEngine(engine)
        }
    }

    public var engineCount: Int { self.shards.count }

    /// The engines new transactions use.
    public var currentEngines: [RuleEngine] {
        get async {
            var engines: [RuleEngine] = []
            for shard in self.shards { engines.append(await shard.currentEngine) }
            return engines
        }
    }

    /// The transaction timeout, fixed at creation: the server's expiry timer runs at a quarter of it.
    public var configurationTimeout: Double { self.configuration.transactionTimeout }

    public var transactionCount: Int {
        get async {
            var count = 0
            for shard in self.shards { count += await shard.transactionCount }
            return count
        }
    }

    /// The estimated bytes held transactions hold in the Lua states.
    public var transactionBytes: Int {
        get async {
            var bytes = 0
            for shard in self.shards { bytes += await shard.transactionBytes }
            return bytes
        }
    }

    /// Forgets transactions idle past the timeout. Called on a timer by `PolicyServer`, so
    /// a quiet server frees them too.
    public func expireIdle() async {
        for shard in self.shards { await shard.expireIdle() }
    }
}

/// Which shard holds each SMTP connection's transactions. A connection has a route while
/// a request of it is being decided or a transaction of it is held; the first request
/// of a connection without one chooses.
final class ConnectionRoutes: Sendable {
    private struct Route {
        var shard: Int
        var references: Int
    }

    private let routes = NIOLockedValueBox([ConnectionKey: Route]())

    /// The connection's shard (`preferred` if it has none yet), with one more reference.
    /// (Each request enters and releases its connection: the routes are found by index, so
    /// the key is hashed once per call.)
    func enter(_ connection: ConnectionKey, preferring preferred: Int) -> Int {
        self.routes.withLockedValue { routes in
            if let index = routes.index(forKey: connection) {
                routes.values[index].references += 1
                return routes.values[index].shard
            }
            routes[connection] = Route(shard: preferred, references: 1)
            return preferred
        }
    }

    /// One more reference to a connection that has a route (a transaction held for it).
    func retain(_ connection: ConnectionKey) {
        self.routes.withLockedValue { routes in
            routes[connection]?.references += 1
        }
    }

    func release(_ connection: ConnectionKey) {
        self.routes.withLockedValue { routes in
            guard let index = routes.index(forKey: connection) else { return }
            if routes.values[index].references <= 1 {
                routes.remove(at: index)
            } else {
                routes.values[index].references -= 1
            }
        }
    }

    func shard(of connection: ConnectionKey) -> Int? {
        self.routes.withLockedValue { $0[connection]?.shard }
    }
}

/// The transactions and bytes each shard holds, summed for the gauges.
final class ShardTotals: Sendable {
    let shardCount: Int
    private let totals: NIOLockedValueBox<[(count: Int, bytes: Int)]>

    init(shardCount: Int) {
        self.shardCount = shardCount
        self.totals = NIOLockedValueBox(Array(repeating: (0, 0), count: shardCount))
    }

    /// Records one shard's totals; returns the sums over all shards.
    func update(shard: Int, count: Int, bytes: Int) -> (count: Int, bytes: Int) {
        self.totals.withLockedValue { totals in
            totals[shard] = (count, bytes)
            return totals.reduce((0, 0)) { ($0.0 + $1.count, $0.1 + $1.bytes) }
        }
    }
}
