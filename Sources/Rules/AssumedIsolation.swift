extension Actor {
    /// Runs `operation` isolated to the actor, called from code that runs on the actor's
    /// executor by construction: a policy shard and its engine share one event loop's
    /// executor (`PolicyShard.replaceEngine` checks it when an engine comes), and a
    /// connection's handler reaches the shard of its own loop. `assumeIsolated` asks the
    /// runtime on every call (twice, about 400 instructions each), and a request calls
    /// across several times; this checks in debug builds only, where the tests run.
    /// The same cast `assumeIsolated` makes after its check.
    package nonisolated func assumeIsolatedByConstruction<T>(_ operation: (isolated Self) throws -> T) rethrows -> T {
        #if DEBUG
        self.preconditionIsolated("not on the actor's executor")
        #endif
        typealias Isolated = (isolated Self) throws -> T
        typealias Plain = (Self) throws -> T
        return try withoutActuallyEscaping(operation) { (escapable: @escaping Isolated) throws -> T in
            try unsafeBitCast(escapable, to: Plain.self)(self)
        }
    }
}
