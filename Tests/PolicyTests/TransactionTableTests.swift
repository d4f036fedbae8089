import DNS
@testable import Policy
import Rules
import Testing

/// The held transactions' least-recently-used list: the order evictions and expiry walk,
/// and that no transaction outlives its removal or its table (the list's links are strong
/// both ways; the table breaks the cycles).
@Suite("Held transaction table")
struct TransactionTableTests {
    /// An engine transaction for the held ones to carry (the table never calls it).
    static func begin() async throws -> (engine: RuleEngine, transaction: RuleTransaction) {
        let engine = try RuleEngine(source: "return {}", path: "empty.lua", resolvers: SingleResolver(ZoneResolver(records: [])))
        return (engine, await engine.beginTransaction(SessionInfo(clientIP: "192.0.2.1")))
    }

    static func transaction(_ instance: String, now: Double, begun: (engine: RuleEngine, transaction: RuleTransaction)) -> HeldTransaction {
        let connection = ConnectionKey(PolicyRequest(attributes: [
            "client_address": "192.0.2.1", "client_port": "1025", "server_address": "192.0.2.25", "server_port": "25",
        ]))
        return HeldTransaction(key: TransactionKey(connection: connection, instance: instance), now: now, cost: 100, begun: begun)
    }

    @Test("touching moves a transaction to the newest end; walks start at the oldest; removal unlinks")
    func order() async throws {
        let begun = try await Self.begin()
        let table = TransactionTable()
        let (a, b, c) = (Self.transaction("a", now: 1, begun: begun), Self.transaction("b", now: 2, begun: begun),
                         Self.transaction("c", now: 3, begun: begun))
        for transaction in [a, b, c] { table.insert(transaction) }
        #expect(table.oldestIdle() === a)
        table.touch(a, now: 4)
        #expect(table.oldestIdle() === b)
        #expect(table.idle(before: 3.5).map(\.key.instance) == ["b", "c"])
        b.inFlight = 1
        #expect(table.oldestIdle() === c)
        #expect(table.oldestIdle(excluding: c) === a)
        table.remove(c.key)
        #expect(c.older == nil && c.newer == nil && c.removed)
        #expect(table.count == 2 && table.bytes == 200)
        #expect(table.idle(before: 10).map(\.key.instance) == ["a"])
    }

    @Test("no transaction outlives its removal or its table")
    func nothingOutlivesTheTable() async throws {
        let begun = try await Self.begin()
        weak var removed: HeldTransaction?
        weak var held: HeldTransaction?
        var table: TransactionTable? = TransactionTable()
        do {
            let first = Self.transaction("first", now: 1, begun: begun)
            let second = Self.transaction("second", now: 2, begun: begun)
            let third = Self.transaction("third", now: 3, begun: begun)
            for transaction in [first, second, third] { table?.insert(transaction) }
            table?.touch(first, now: 4)
            removed = second
            held = third
            table?.remove(second.key)
        }
        #expect(removed == nil)
        #expect(held != nil)
        table = nil
        #expect(held == nil)
    }
}

@Suite("Request metric labels")
struct ProtocolStateLabelTests {
    @Test("every protocol state has its own stage label, in the array the handles are kept in")
    func labels() {
        let expected: [(String, String)] = [
            ("CONNECT", "connect"), ("EHLO", "helo"), ("HELO", "helo"), ("MAIL", "mail"), ("RCPT", "rcpt"),
            ("DATA", "data"), ("BDAT", "data"), ("END-OF-MESSAGE", "preq"), ("XCLIENT", "xclient"),
            ("VRFY", "vrfy"), ("ETRN", "etrn"), ("SOMETHING-NEW", "unknown"),
        ]
        for (state, label) in expected {
            #expect(ProtocolState.metricLabels[ProtocolState(state).metricIndex] == label, "\(state)")
        }
        #expect(Set(ProtocolState.metricLabels).count == ProtocolState.metricLabels.count)
        for stage in Stage.allCases {
            #expect(ProtocolState.metricLabels[ProtocolState.stage(stage).metricIndex] == stage.rawValue)
        }
    }
}
