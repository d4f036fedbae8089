import CLua
import CLuaShim

/// What a host function tells its C trampoline to do.
public enum LuaHostReturn {
    /// Return this many values from the stack top.
    case values(Int32)
    /// Raise the message on the stack top, prefixed with the caller's `path:line:`.
    case error
    /// Raise the value on the stack top as it is (a typed error object).
    case raise
    /// Suspend the calling coroutine; the host resumes it with `(true, values...)` or `(false, error)`.
    case yield

    var status: Int32 {
        switch self {
        case .values(let count): return count
        case .error: return Int32(VRULES_HOST_ERROR)
        case .raise: return Int32(VRULES_HOST_RAISE)
        case .yield: return Int32(VRULES_HOST_YIELD)
        }
    }
}

/// Receives calls of host functions. It runs on the thread that resumed the Lua code,
/// inside the trampoline; it must not raise Lua errors itself, only return a status.
public protocol LuaHostDispatching: AnyObject {
    func callHostFunction(_ id: Int32, thread: LuaThread) -> LuaHostReturn
}

/// What a host function's closure carries to reach its host: a box the host owns, so the
/// dispatcher calls through the protocol's witness table with no dynamic cast per call.
public final class LuaHostReference {
    // unowned(unsafe): the host owns this box and outlives every call that reaches it.
    unowned(unsafe) let target: any LuaHostDispatching

    public init(_ target: any LuaHostDispatching) {
        self.target = target
    }

    /// The pointer given to `pushHostFunction`; valid while the host keeps this box.
    public var pointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
}

public enum LuaHostDispatch {
    private static let installed: Void = {
        vrules_set_dispatch { host, functionID, thread in
            let reference = Unmanaged<LuaHostReference>.fromOpaque(host!).takeUnretainedValue()
            return reference.target.callHostFunction(functionID, thread: thread!).status
        }
    }()

    /// Installs the single C-side dispatcher (idempotent).
    public static func install() { _ = self.installed }
}

/// The limits of one evaluation, shared with the C count hook through the thread's extra
/// space. `owner` is the host's object for the evaluation (what a host call belongs to).
public final class LuaBudget {
    public let pointer: UnsafeMutablePointer<vrules_budget>

    /// - Parameters:
    ///   - instructions: VM instructions, library work and allocated bytes (one unit per
    ///     16 bytes) allowed.
    ///   - seconds: wall-clock deadline from now, DNS waits included (0 = none).
    ///   - runSeconds: time the script may spend running, DNS waits excluded (0 = none).
    public init(instructions: Int64, seconds: Double, runSeconds: Double = 0, owner: UnsafeMutableRawPointer? = nil) {
        self.pointer = .allocate(capacity: 1)
        var budget = vrules_budget()
        budget.remaining = instructions
        budget.deadline = seconds > 0 ? vrules_now() + seconds : 0
        budget.run_limit = runSeconds
        budget.owner = owner
        self.pointer.initialize(to: budget)
    }

    deinit { self.pointer.deallocate() }

    public func attach(to thread: LuaThread) {
        vrules_set_budget(thread, self.pointer)
        vrules_install_hook(thread)
    }

    public static func detach(from thread: LuaThread) {
        vrules_set_budget(thread, nil)
    }

    /// The owner given to the budget attached to `thread`, if any.
    public static func owner(of thread: LuaThread) -> UnsafeMutableRawPointer? {
        guard let budget = vrules_get_budget(thread) else { return nil }
        return budget.pointee.owner
    }

    public var exceeded: LuaLimit? {
        switch Int(self.pointer.pointee.exceeded) {
        case Int(VRULES_EXCEEDED_INSTRUCTIONS): return .instructions
        case Int(VRULES_EXCEEDED_DEADLINE): return .deadline
        case Int(VRULES_EXCEEDED_MEMORY): return .memory
        case Int(VRULES_EXCEEDED_RUN_TIME): return .runTime
        default: return nil
        }
    }

    public var deadline: Double { self.pointer.pointee.deadline }

    public static func now() -> Double { vrules_now() }
}

public enum LuaLimit: String, Sendable {
    case instructions = "instruction budget exceeded"
    case deadline = "stage deadline exceeded"
    case memory = "memory limit exceeded"
    case runTime = "stage run time exceeded"
}
