/// How addresses of both families are asked for, and in what order they are returned.
public enum IPStrategy: String, Hashable, Sendable, CaseIterable {
    case ipv4Only = "Ipv4Only"
    case ipv6Only = "Ipv6Only"
    case ipv4AndIpv6 = "Ipv4AndIpv6"
    case ipv4ThenIpv6 = "Ipv4thenIpv6"
    case ipv6ThenIpv4 = "Ipv6thenIpv4"
}

/// The one seam between the rule engine and any resolver (zone file, network).
/// Everything above it (address lookups, MX location, iprev) is written once, in `DNSLookups`.
public protocol DNSResolving: Sendable {
    /// Resolve one question. Names arrive normalised. Never throws anything but `DNSError`.
    func resolve(_ question: DNSQuestion) async -> DNSQueryResult

    /// An answer available without waiting (a warm cache or in-memory data), or nil.
    /// The engine uses it to answer a rule without suspending its coroutine.
    func immediateResult(for question: DNSQuestion) -> DNSQueryResult?

    /// Starts resolving `question` and returns at once; `deliver` gets the result, once, on
    /// any thread (possibly before this returns). The engine's DNS waits use it: a resolver
    /// that can answer without a task of its own (a lookup already running for the same
    /// question) saves the task, and the hops between tasks, a wait would otherwise cost.
    /// A task the resolver starts prefers `executor`. Cancelling the returned lookup gives
    /// up its answer (`deliver` may then get a failure, or nothing).
    func startResolving(_ question: DNSQuestion, preferring executor: (any TaskExecutor)?,
                        deliver: @escaping @Sendable (DNSQueryResult) -> Void) -> DNSLookupHandle

    /// The order of addresses returned by `dns.lookup`.
    var ipStrategy: IPStrategy { get }

    /// Whether multi-record answers are rotated between lookups.
    var rotatesRecords: Bool { get }

    /// Where SPF checks on this resolver keep reusable results (`SPFResultMemo`); nil when
    /// they keep none (no cache: every check reads DNS).
    var spfResultMemo: SPFResultMemo? { get }
}

/// A task executor that can also run a plain closure on its thread. A resolver that finishes a
/// lookup outside any task (on its I/O thread) finishes it there instead when the asker
/// prefers such an executor: where the lookups that joined it mostly wait, so that their
/// answers do not each cross threads.
public protocol ClosureExecuting: TaskExecutor {
    func execute(_ body: @escaping @Sendable () -> Void)
}

/// A lookup started with `DNSResolving.startResolving`.
public struct DNSLookupHandle: Sendable {
    private let cancelAction: (@Sendable () -> Void)?

    /// `cancel` gives up the lookup; nil: nothing to cancel (answered at once, or shared).
    public init(cancel: (@Sendable () -> Void)? = nil) {
        self.cancelAction = cancel
    }

    public func cancel() { self.cancelAction?() }
}

extension DNSResolving {
    public func immediateResult(for question: DNSQuestion) -> DNSQueryResult? { nil }

    /// A task per lookup, preferring `executor`.
    public func startResolving(_ question: DNSQuestion, preferring executor: (any TaskExecutor)?,
                               deliver: @escaping @Sendable (DNSQueryResult) -> Void) -> DNSLookupHandle {
        let lookup = Task(executorPreference: executor) { deliver(await self.resolve(question)) }
        return DNSLookupHandle { lookup.cancel() }
    }
    public var ipStrategy: IPStrategy { .ipv4ThenIpv6 }
    public var rotatesRecords: Bool { false }
    public var spfResultMemo: SPFResultMemo? { nil }
}

/// Chooses the resolver for a transaction: the virtual domain's own (walking up parent
/// domains) or the root one. Implemented by the network resolver's configuration.
public protocol DNSResolverSelecting: Sendable {
    func resolver(forDomain domain: String?) -> any DNSResolving
}

/// A single resolver used for every domain (the zone-file resolver, tests).
public struct SingleResolver: DNSResolverSelecting {
    public let resolver: any DNSResolving
    public init(_ resolver: any DNSResolving) { self.resolver = resolver }
    public func resolver(forDomain domain: String?) -> any DNSResolving { self.resolver }
}
