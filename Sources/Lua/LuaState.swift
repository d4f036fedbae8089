import CLua
import CLuaShim

public typealias LuaThread = OpaquePointer

/// Why a protected call or resume ended.
public enum LuaStatus: Equatable, Sendable {
    case ok
    case yield
    case runtimeError
    case memoryError
    case otherError(Int32)

    init(_ code: Int32) {
        switch code {
        case LUA_OK: self = .ok
        case LUA_YIELD: self = .yield
        case LUA_ERRRUN: self = .runtimeError
        case LUA_ERRMEM: self = .memoryError
        default: self = .otherError(code)
        }
    }
}

/// A Lua error turned into text on the host side.
public struct LuaError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}

/// One Lua state with a memory cap, and the few operations the host performs on it.
///
/// Every operation here is one that cannot raise a Lua error from a Swift frame: pushes
/// allocate with the cap lifted (see `vrules_state_info.enforce`), tables are accessed raw
/// (no metamethods), and anything that runs Lua code goes through `lua_pcall` or
/// `lua_resume`, which catch errors on the C side.
public final class LuaState {
    public let L: LuaThread
    private let info: UnsafeMutablePointer<vrules_state_info>
    private let mainBudget: UnsafeMutablePointer<vrules_budget>

    /// - Parameter memoryLimit: bytes the scripts may allocate in total (0 = unlimited).
    public init(memoryLimit: Int) {
        self.info = .allocate(capacity: 1)
        var info = vrules_state_info()
        info.limit = memoryLimit
        self.info.initialize(to: info)
        self.mainBudget = .allocate(capacity: 1)
        self.mainBudget.initialize(to: Self.unlimitedBudget)
        guard let L = vrules_newstate(self.info) else { fatalError("lua_newstate failed: out of memory") }
        self.L = L
        vrules_set_budget(L, self.mainBudget)
        vrules_install_hook(L)
        if vrules_open_libraries(L) != LUA_OK { fatalError("cannot open the Lua standard libraries") }
    }

    deinit {
        lua_close(self.L)
        vrules_release_small_blocks(self.info)
        self.info.deallocate()
        self.mainBudget.deallocate()
    }

    // MARK: memory

    public var memoryUsed: Int { self.info.pointee.used }
    public var memoryLimit: Int { self.info.pointee.limit }

    /// Runs `body`, which runs script code on the main thread, with the memory cap applied
    /// and allocations charged to the main thread's budget.
    @inline(__always)
    public func enforcingMemoryLimit<T>(_ body: () throws -> T) rethrows -> T {
        let saved = vrules_enforce_begin(self.L)
        defer { vrules_enforce_end(self.L, saved) }
        return try body()
    }

    /// Tests: makes the `count`-th script allocation from now fail, as malloc failing would
    /// (0 disables). Returns the number of script allocations made so far.
    @discardableResult
    public func failScriptAllocation(after count: Int64) -> Int64 {
        let made = self.info.pointee.allocations
        self.info.pointee.fail_at = count > 0 ? made + count : 0
        return made
    }

    /// Script allocations made so far (growth allocations while script code runs).
    public var scriptAllocations: Int64 { self.info.pointee.allocations }

    /// A memory error clears itself once the garbage of the failed evaluation is collected.
    /// Runs the collector in generational mode: a rule engine's objects (results, verdicts,
    /// a transaction's context) mostly die within a stage or a transaction.
    public func useGenerationalCollector() {
        vrules_gc_generational(self.L)
    }

    public func collectGarbageAfterFailure() {
        vrules_gc_collect(self.L)
        self.info.pointee.memory_exceeded = 0
    }

    public var memoryExceeded: Bool { self.info.pointee.memory_exceeded != 0 }

    // MARK: main-thread limits (load time, host-side conversions)

    /// Runs `body` (load-time code, `__tostring` of an error object) under its own budget.
    public func withMainBudget<T>(instructions: Int64, seconds: Double, _ body: () throws -> T) rethrows -> T {
        let saved = self.mainBudget.pointee
        var budget = vrules_budget()
        budget.remaining = instructions
        budget.deadline = vrules_now() + seconds
        self.mainBudget.pointee = budget
        vrules_install_hook(self.L)
        defer {
            self.mainBudget.pointee = saved
            vrules_install_hook(self.L)
        }
        return try self.enforcingMemoryLimit(body)
    }

    private static var unlimitedBudget: vrules_budget {
        var budget = vrules_budget()
        budget.remaining = .max
        return budget
    }

    public var mainBudgetExceeded: Int32 { self.mainBudget.pointee.exceeded }

    // MARK: stack

    public func top(_ thread: LuaThread? = nil) -> Int32 { lua_gettop(thread ?? self.L) }
    /// Whether the running function may yield: false inside a callback of a C function
    /// (`table.sort`'s comparison, `string.gsub`'s replacement, `tostring`'s `__tostring`).
    public func isYieldable(_ thread: LuaThread? = nil) -> Bool { lua_isyieldable(thread ?? self.L) != 0 }
    public func setTop(_ index: Int32, _ thread: LuaThread? = nil) { lua_settop(thread ?? self.L, index) }
    public func pop(_ count: Int32 = 1, _ thread: LuaThread? = nil) { vrules_pop(thread ?? self.L, count) }

    public static let registryIndex: Int32 = vrules_registryindex()

    // MARK: loading and calling

    /// Loads `source` as a text chunk named `@path`, leaving the function on the stack.
    public func load(source: String, chunkName: String) -> Result<Void, LuaError> {
        var source = source
        let status = source.withUTF8 { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                vrules_load_text(self.L, chars.baseAddress, chars.count, chunkName)
            }
        }
        if status == LUA_OK { return .success(()) }
        let message = self.errorMessage(at: -1)
        self.pop()
        return .failure(LuaError(message))
    }

    /// `lua_pcall` on the main thread. On failure the error object is turned into text and popped.
    public func protectedCall(arguments: Int32, results: Int32) -> Result<Void, LuaError> {
        let status = vrules_pcall(self.L, arguments, results)
        if status == LUA_OK { return .success(()) }
        let message = self.errorMessage(at: -1)
        self.pop()
        return .failure(LuaError(message))
    }

    /// The text of the value at `index` of the main stack, computed safely (a throwing or
    /// looping `__tostring` cannot escape). Leaves the stack unchanged.
    public func errorMessage(at index: Int32) -> String {
        let absolute = lua_absindex(self.L, index)
        let type = self.type(at: absolute)
        if type == .string { return self.string(at: absolute, cutAt: Self.maximumErrorMessageBytes) ?? "" }
        guard self.reserve(1) else { return "(error object is a \(type.name) value)" }
        lua_pushvalue(self.L, absolute)
        let converted = self.withMainBudget(instructions: 100_000, seconds: 0.5) {
            vrules_tostring(self.L, -1)
        }
        let text = converted != 0 ? self.string(at: -1, cutAt: Self.maximumErrorMessageBytes) : nil
        self.pop()
        return text ?? "(error object is a \(type.name) value)"
    }

    /// The longest error message read whole: a script's `error(string.rep("x", 3 << 20))`
    /// is logged for every request that meets it.
    public static let maximumErrorMessageBytes = 4_096

    /// Makes room for `count` more values on the stack; false when it cannot grow (never raises).
    public func reserve(_ count: Int32, _ thread: LuaThread? = nil) -> Bool {
        vrules_checkstack(thread ?? self.L, count) != 0
    }

    // MARK: threads

    /// A new coroutine, anchored in the registry. Returns the thread and its reference.
    public func newThread() -> (LuaThread, Int32) {
        let thread = lua_newthread(self.L)!
        let reference = luaL_ref(self.L, Self.registryIndex)
        return (thread, reference)
    }

    public func release(reference: Int32) {
        luaL_unref(self.L, Self.registryIndex, reference)
    }

    public func resume(_ thread: LuaThread, arguments: Int32) -> (LuaStatus, Int32) {
        var results: Int32 = 0
        let status = vrules_resume(self.L, thread, arguments, &results)
        return (LuaStatus(status), results)
    }

    // MARK: values

    public func pushString(_ value: String, _ thread: LuaThread? = nil) {
        var value = value
        value.withUTF8 { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                _ = lua_pushlstring(thread ?? self.L, chars.baseAddress, chars.count)
            }
        }
    }

    /// Pushes a new array of strings, with room for `fieldCount` named fields set afterwards
    /// (sized once, so that adding them does not rehash the table).
    public func pushStringArray(_ values: [String], fieldCount: Int32 = 0, _ thread: LuaThread? = nil) {
        let thread = thread ?? self.L
        lua_createtable(thread, Int32(values.count), fieldCount)
        for (index, value) in values.enumerated() {
            self.pushString(value, thread)
            lua_rawseti(thread, -2, lua_Integer(index + 1))
        }
    }

    /// Whether the value at `index` is a number with an integer representation (Lua's `math.type` "integer").
    public func isInteger(at index: Int32, _ thread: LuaThread? = nil) -> Bool {
        lua_isinteger(thread ?? self.L, index) != 0
    }

    public func pushInteger(_ value: Int, _ thread: LuaThread? = nil) { lua_pushinteger(thread ?? self.L, lua_Integer(value)) }
    public func pushBoolean(_ value: Bool, _ thread: LuaThread? = nil) { lua_pushboolean(thread ?? self.L, value ? 1 : 0) }
    public func pushNil(_ thread: LuaThread? = nil) { lua_pushnil(thread ?? self.L) }
    public func pushValue(at index: Int32, _ thread: LuaThread? = nil) { lua_pushvalue(thread ?? self.L, index) }
    public func newTable(arrayCount: Int32 = 0, fieldCount: Int32 = 0, _ thread: LuaThread? = nil) {
        lua_createtable(thread ?? self.L, arrayCount, fieldCount)
    }

    public func pushReference(_ reference: Int32, _ thread: LuaThread? = nil) {
        lua_rawgeti(thread ?? self.L, Self.registryIndex, lua_Integer(reference))
    }

    /// Pops the top value into the registry.
    public func makeReference(_ thread: LuaThread? = nil) -> Int32 {
        let thread = thread ?? self.L
        if thread != self.L { lua_xmove(thread, self.L, 1) }
        return luaL_ref(self.L, Self.registryIndex)
    }

    public func pushHostFunction(host: UnsafeMutableRawPointer, id: Int32, _ thread: LuaThread? = nil) {
        vrules_push_host_function(thread ?? self.L, host, id)
    }

    /// `t[key] = top` without metamethods, for a literal key (the host's own field names);
    /// pops the value. The key is found in Lua's string cache by address, not hashed again
    /// on every call.
    public func setField(_ key: StaticString, table: Int32, _ thread: LuaThread? = nil) {
        // A literal is stored NUL-terminated; a one-scalar StaticString is not (it has no pointer).
        guard key.hasPointerRepresentation else {
            self.setField(named: key.description, table: table, thread)
            return
        }
        key.utf8Start.withMemoryRebound(to: CChar.self, capacity: key.utf8CodeUnitCount + 1) {
            vrules_set_field(thread ?? self.L, table, $0)
        }
    }

    /// `t[key] = top` without metamethods, for a key made at run time; pops the value.
    public func setField(named key: String, table: Int32, _ thread: LuaThread? = nil) {
        let thread = thread ?? self.L
        let table = lua_absindex(thread, table)
        self.pushString(key, thread)
        lua_rotate(thread, -2, 1)
        lua_rawset(thread, table)
    }

    /// `t[index] = top` without metamethods; pops the value.
    public func setIndex(_ index: Int, table: Int32, _ thread: LuaThread? = nil) {
        lua_rawseti(thread ?? self.L, table, lua_Integer(index))
    }

    /// Pushes `t[key]` without metamethods and returns its type.
    @discardableResult
    public func getField(_ key: String, table: Int32, _ thread: LuaThread? = nil) -> LuaType {
        let thread = thread ?? self.L
        let table = lua_absindex(thread, table)
        self.pushString(key, thread)
        return LuaType(rawValue: lua_rawget(thread, table)) ?? .none
    }

    @discardableResult
    public func getIndex(_ index: Int, table: Int32, _ thread: LuaThread? = nil) -> LuaType {
        LuaType(rawValue: lua_rawgeti(thread ?? self.L, table, lua_Integer(index))) ?? .none
    }

    public func type(at index: Int32, _ thread: LuaThread? = nil) -> LuaType {
        LuaType(rawValue: lua_type(thread ?? self.L, index)) ?? .none
    }

    /// The string at `index`, only if it is a string (numbers are not converted in place).
    public func string(at index: Int32, _ thread: LuaThread? = nil) -> String? {
        var length = 0
        guard let chars = vrules_tolstring(thread ?? self.L, index, &length) else { return nil }
        return chars.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }

    /// The string at `index` (or the number, converted in place), of at most `limit` bytes:
    /// a longer one is cut on a UTF-8 character boundary and ends `… (N bytes more)`. Only
    /// the bytes kept are copied out of the Lua state.
    public func string(at index: Int32, _ thread: LuaThread? = nil, cutAt limit: Int) -> String? {
        var length = 0
        guard let chars = vrules_tolstring(thread ?? self.L, index, &length) else { return nil }
        return chars.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
            guard length > limit else { return String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self) }
            // Back off continuation bytes (10xxxxxx), at most a character's three, so that no
            // character is split (bytes that are not UTF-8 are decoded as U+FFFD anyway).
            var kept = limit
            while kept > max(0, limit - 3) && bytes[kept] & 0xC0 == 0x80 { kept -= 1 }
            return String(decoding: UnsafeBufferPointer(start: bytes, count: kept), as: UTF8.self)
                + "… (\(length - kept) bytes more)"
        }
    }

    public func integer(at index: Int32, _ thread: LuaThread? = nil) -> Int? {
        var isNumber: Int32 = 0
        let value = lua_tointegerx(thread ?? self.L, index, &isNumber)
        return isNumber != 0 ? Int(value) : nil
    }

    public func number(at index: Int32, _ thread: LuaThread? = nil) -> Double {
        lua_tonumberx(thread ?? self.L, index, nil)
    }

    public func boolean(at index: Int32, _ thread: LuaThread? = nil) -> Bool {
        lua_toboolean(thread ?? self.L, index) != 0
    }

    /// The identity of a table (or other reference value) at `index`, for cycle detection.
    public func pointer(at index: Int32, _ thread: LuaThread? = nil) -> UnsafeRawPointer? {
        lua_topointer(thread ?? self.L, index)
    }

    public func rawLength(at index: Int32, _ thread: LuaThread? = nil) -> Int {
        Int(lua_rawlen(thread ?? self.L, index))
    }

    public func rawEqual(_ a: Int32, _ b: Int32, _ thread: LuaThread? = nil) -> Bool {
        lua_rawequal(thread ?? self.L, a, b) != 0
    }

    /// Pushes the metatable of the value at `index`; returns false (pushing nothing) if none.
    public func getMetatable(at index: Int32, _ thread: LuaThread? = nil) -> Bool {
        lua_getmetatable(thread ?? self.L, index) != 0
    }

    /// Sets the table on the top as the metatable of the value at `index`; pops it.
    public func setMetatable(at index: Int32, _ thread: LuaThread? = nil) {
        let thread = thread ?? self.L
        let index = lua_absindex(thread, index)
        lua_setmetatable(thread, index)
    }

    /// Iterates the keys of the table at `index` with raw `lua_next`. The body sees the key
    /// at -2 and the value at -1 and must leave the stack as it found it.
    public func forEachPair(table index: Int32, _ thread: LuaThread? = nil, _ body: () -> Void) {
        let thread = thread ?? self.L
        let table = lua_absindex(thread, index)
        lua_pushnil(thread)
        while lua_next(thread, table) != 0 {
            body()
            self.pop(1, thread)
        }
    }

    public func moveTop(from: LuaThread, to: LuaThread, count: Int32 = 1) {
        lua_xmove(from, to, count)
    }
}

public enum LuaType: Int32, Sendable {
    case none = -1
    case `nil` = 0
    case boolean = 1
    case lightUserdata = 2
    case number = 3
    case string = 4
    case table = 5
    case function = 6
    case userdata = 7
    case thread = 8

    /// The name Lua's `type()` gives.
    public var name: String {
        switch self {
        case .none: return "no value"
        case .nil: return "nil"
        case .boolean: return "boolean"
        case .lightUserdata, .userdata: return "userdata"
        case .number: return "number"
        case .string: return "string"
        case .table: return "table"
        case .function: return "function"
        case .thread: return "thread"
        }
    }
}

extension LuaState {
    /// Sets upvalue `n` of the function at `index` to the value on the top (pops it).
    /// Used to give a loaded chunk the sandbox as its `_ENV`.
    public func setUpvalue(function index: Int32, _ n: Int32) {
        let function = lua_absindex(self.L, index)
        _ = lua_setupvalue(self.L, function, n)
    }

    public func pushNumber(_ value: Double, _ thread: LuaThread? = nil) { lua_pushnumber(thread ?? self.L, value) }

    public func absoluteIndex(_ index: Int32, _ thread: LuaThread? = nil) -> Int32 { lua_absindex(thread ?? self.L, index) }

    public func insert(at index: Int32, _ thread: LuaThread? = nil) { lua_rotate(thread ?? self.L, index, 1) }

    /// Pushes the sandbox's C library table (see `vrules_push_sandbox_library`).
    public func pushSandboxLibrary() -> Bool {
        vrules_push_sandbox_library(self.L) == LUA_OK
    }

    /// Replaces the table on the top by a read-only proxy of it named `name` in messages.
    public func makeTopReadonly(name: String, _ thread: LuaThread? = nil) {
        let thread = thread ?? self.L
        vrules_push_readonly(thread, -1, name)
        lua_rotate(thread, -2, 1)
        lua_settop(thread, -2)
    }
}
