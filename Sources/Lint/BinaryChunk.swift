import Rules
/// Why a Lua 5.4 binary chunk could not be read. The linter only reads chunks it has just
/// dumped itself, so any of these means a mismatch between this parser and the linked Lua.
public enum BinaryChunkError: Error, Hashable, Sendable {
    /// The input ended inside `what`.
    case truncated(String)
    /// The header does not describe a Lua 5.4 chunk with this machine's type sizes.
    case badHeader(String)
    /// A constant's type tag is not one Lua 5.4 dumps.
    case unknownConstantTag(UInt8)
    /// A size or count does not fit (corrupt varint).
    case oversized(String)
}

/// A constant of a function prototype.
public enum LuaConstant: Hashable, Sendable {
    case `nil`
    case boolean(Bool)
    case integer(Int64)
    case float(Double)
    case string(String)

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}

/// An upvalue descriptor: where the closure finds it when it is created.
public struct LuaUpvalue: Hashable, Sendable {
    public var inStack: Bool
    public var index: UInt8
    public var kind: UInt8
    /// From the debug information; nil when stripped.
    public var name: String?
}

/// One function prototype of a dumped chunk, with its nested functions and debug information.
public struct LuaPrototype: Sendable {
    public var source: String?
    public var lineDefined: Int
    public var lastLineDefined: Int
    public var parameterCount: UInt8
    public var isVararg: Bool
    public var maxStackSize: UInt8
    public var code: [UInt32]
    public var constants: [LuaConstant]
    public var upvalues: [LuaUpvalue]
    public var prototypes: [LuaPrototype]
    /// Line of each instruction, resolved from `lineinfo` deltas and `abslineinfo`.
    public var lines: [Int]
    /// The parameters' names from the debug information ("" where it has none).
    public var parameterNames: [String] = []
    /// Each local's instructions, in the order they are declared (`locvars`): at a pc the
    /// locals active there hold the lowest registers, in that order.
    public var localRanges: [Range<Int>] = []

    /// Whether `register` holds a named local at `pc` (not a temporary of an expression).
    public func isLocal(_ register: Int, at pc: Int) -> Bool {
        self.localRanges.lazy.filter { $0.contains(pc) }.count > register
    }

    /// True for the main function of a chunk (it runs when the script loads).
    public var isMainChunk: Bool { self.lineDefined == 0 }
}

/// Reads the output of `lua_dump` for Lua 5.4 (lundump.c's format): a header that pins the
/// version and type sizes, then the main function, recursively.
///
/// Every read is guarded: a short or corrupt input gives a typed error, never a trap.
public struct BinaryChunk: Sendable {
    public var upvalueCount: UInt8
    public var main: LuaPrototype

    static let signature: [UInt8] = [0x1B, 0x4C, 0x75, 0x61]  // "\x1bLua"
    static let luacData: [UInt8] = [0x19, 0x93, 0x0D, 0x0A, 0x1A, 0x0A]
    /// `lineinfo` entry meaning "see abslineinfo" (ldebug.h ABSLINEINFO).
    static let absoluteLineMarker: Int8 = -0x80

    public init(bytes: [UInt8]) throws(BinaryChunkError) {
        var input = bytes[...]
        try Self.readHeader(&input)
        self.upvalueCount = try input.readByte("upvalue count")
        self.main = try Self.readFunction(&input, parentSource: nil, depth: 0)
    }

    private static func readHeader(_ input: inout ArraySlice<UInt8>) throws(BinaryChunkError) {
        guard try input.readBytes(4, "signature") == Self.signature[...] else { throw .badHeader("not a Lua binary chunk") }
        let version = try input.readByte("version")
        guard version == 0x54 else { throw .badHeader("version \(String(version, radix: 16)), expected 54") }
        guard try input.readByte("format") == 0 else { throw .badHeader("unofficial format") }
        guard try input.readBytes(6, "LUAC_DATA") == Self.luacData[...] else { throw .badHeader("corrupted LUAC_DATA") }
        guard try input.readByte("instruction size") == 4 else { throw .badHeader("instruction size is not 4") }
        guard try input.readByte("integer size") == 8 else { throw .badHeader("lua_Integer size is not 8") }
        guard try input.readByte("number size") == 8 else { throw .badHeader("lua_Number size is not 8") }
        guard try input.readInt64("LUAC_INT") == 0x5678 else { throw .badHeader("integer format mismatch (endianness)") }
        guard try input.readDouble("LUAC_NUM") == 370.5 else { throw .badHeader("float format mismatch") }
    }

    /// Nesting bound: Lua itself caps syntactic nesting at 200 (LUAI_MAXCCALLS).
    private static let maximumDepth = 250

    private static func readFunction(_ input: inout ArraySlice<UInt8>, parentSource: String?,
                                     depth: Int) throws(BinaryChunkError) -> LuaPrototype {
        guard depth < Self.maximumDepth else { throw .oversized("function nesting") }
        let source = try input.readString("source") ?? parentSource
        let lineDefined = try input.readSize("linedefined")
        let lastLineDefined = try input.readSize("lastlinedefined")
        let parameterCount = try input.readByte("numparams")
        let isVararg = try input.readByte("is_vararg") != 0
        let maxStackSize = try input.readByte("maxstacksize")

        let codeCount = try input.readCount("code size", elementSize: 4)
        var code: [UInt32] = []
        code.reserveCapacity(codeCount)
        for _ in 0..<codeCount { code.append(try input.readUInt32("instruction")) }

        let constantCount = try input.readCount("constant count", elementSize: 1)
        var constants: [LuaConstant] = []
        constants.reserveCapacity(constantCount)
        for _ in 0..<constantCount {
            let tag = try input.readByte("constant tag")
            switch tag {
            case 0x00: constants.append(.nil)
            case 0x01: constants.append(.boolean(false))
            case 0x11: constants.append(.boolean(true))
            case 0x03: constants.append(.integer(try input.readInt64("integer constant")))
            case 0x13: constants.append(.float(try input.readDouble("float constant")))
            case 0x04, 0x14: constants.append(.string(try input.readString("string constant") ?? ""))
            default: throw .unknownConstantTag(tag)
            }
        }

        let upvalueCount = try input.readCount("upvalue count", elementSize: 3)
        var upvalues: [LuaUpvalue] = []
        for _ in 0..<upvalueCount {
            let inStack = try input.readByte("upvalue instack") != 0
            let index = try input.readByte("upvalue index")
            let kind = try input.readByte("upvalue kind")
            upvalues.append(LuaUpvalue(inStack: inStack, index: index, kind: kind, name: nil))
        }

        let prototypeCount = try input.readCount("prototype count", elementSize: 1)
        var prototypes: [LuaPrototype] = []
        for _ in 0..<prototypeCount {
            prototypes.append(try Self.readFunction(&input, parentSource: source, depth: depth + 1))
        }

        // Debug information.
        let lineInfoCount = try input.readCount("lineinfo size", elementSize: 1)
        let lineInfo = try input.readBytes(lineInfoCount, "lineinfo").map { Int8(bitPattern: $0) }
        let absoluteCount = try input.readCount("abslineinfo size", elementSize: 2)
        var absolute: [Int: Int] = [:]
        for _ in 0..<absoluteCount {
            let pc = try input.readSize("abslineinfo pc")
            let line = try input.readSize("abslineinfo line")
            absolute[pc] = line
        }
        let localCount = try input.readCount("locvars size", elementSize: 3)
        var parameterNames: [String] = []
        var localRanges: [Range<Int>] = []
        for index in 0..<localCount {
            let name = try input.readString("local name")
            let start = try input.readSize("local startpc")
            let end = try input.readSize("local endpc")
            localRanges.append(start..<max(start, end))
            // The parameters are the first locals, in order.
            if index < Int(parameterCount) { parameterNames.append(name ?? "") }
        }
        let upvalueNameCount = try input.readCount("upvalue names size", elementSize: 1)
        for index in 0..<upvalueNameCount {
            let name = try input.readString("upvalue name")
            if index < upvalues.count { upvalues[index].name = name }
        }

        // luaG_getfuncline, done once for every pc: deltas from linedefined, with an
        // absolute line wherever the delta did not fit in a signed byte.
        var lines: [Int] = []
        lines.reserveCapacity(code.count)
        var line = lineDefined
        for pc in 0..<code.count {
            if pc < lineInfo.count {
                if lineInfo[pc] == Self.absoluteLineMarker {
                    guard let value = absolute[pc] else { throw .truncated("abslineinfo entry for pc \(pc)") }
                    line = value
                } else {
                    line += Int(lineInfo[pc])
                }
            }
            lines.append(line)
        }

        return LuaPrototype(source: source, lineDefined: lineDefined, lastLineDefined: lastLineDefined,
                            parameterCount: parameterCount, isVararg: isVararg, maxStackSize: maxStackSize,
                            code: code, constants: constants, upvalues: upvalues, prototypes: prototypes, lines: lines,
                            parameterNames: parameterNames, localRanges: localRanges)
    }
}

extension ArraySlice where Element == UInt8 {
    fileprivate mutating func readByte(_ what: String) throws(BinaryChunkError) -> UInt8 {
        guard let byte = self.popFirst() else { throw .truncated(what) }
        return byte
    }

    fileprivate mutating func readBytes(_ count: Int, _ what: String) throws(BinaryChunkError) -> ArraySlice<UInt8> {
        guard count >= 0, self.count >= count else { throw .truncated(what) }
        let bytes = self.prefix(count)
        self = self.dropFirst(count)
        return bytes
    }

    /// Little-endian, as `lua_dump` writes native order and the header pinned it.
    fileprivate mutating func readUInt64(_ what: String) throws(BinaryChunkError) -> UInt64 {
        let bytes = try self.readBytes(8, what)
        var value: UInt64 = 0
        for (shift, byte) in bytes.enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return value
    }

    fileprivate mutating func readUInt32(_ what: String) throws(BinaryChunkError) -> UInt32 {
        let bytes = try self.readBytes(4, what)
        var value: UInt32 = 0
        for (shift, byte) in bytes.enumerated() { value |= UInt32(byte) << (8 * UInt32(shift)) }
        return value
    }

    fileprivate mutating func readInt64(_ what: String) throws(BinaryChunkError) -> Int64 {
        Int64(bitPattern: try self.readUInt64(what))
    }

    fileprivate mutating func readDouble(_ what: String) throws(BinaryChunkError) -> Double {
        Double(bitPattern: try self.readUInt64(what))
    }

    /// ldump.c `dumpSize`: 7-bit groups, most significant first, the last one marked by 0x80.
    fileprivate mutating func readSize(_ what: String) throws(BinaryChunkError) -> Int {
        var value = 0
        while true {
            let byte = try self.readByte(what)
            guard value <= (Int.max >> 7) else { throw .oversized(what) }
            value = (value << 7) | Int(byte & 0x7F)
            if byte & 0x80 != 0 { return value }
        }
    }

    /// A count of elements that each take at least `elementSize` bytes: bounded by what is
    /// left, so a corrupt count cannot make us reserve unbounded memory.
    fileprivate mutating func readCount(_ what: String, elementSize: Int) throws(BinaryChunkError) -> Int {
        let count = try self.readSize(what)
        guard count <= self.count / Swift.max(elementSize, 1) else { throw .oversized(what) }
        return count
    }

    /// ldump.c `dumpString`: size + 1 (0 for NULL), then the bytes without the terminator.
    fileprivate mutating func readString(_ what: String) throws(BinaryChunkError) -> String? {
        let size = try self.readSize(what)
        if size == 0 { return nil }
        let bytes = try self.readBytes(size - 1, what)
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension ReplyValidation.Argument {
    /// A constant argument of a call the linter reads (nil when absent).
    init(_ constant: LuaConstant?) {
        switch constant {
        case nil, .nil?: self = .nil
        case .boolean(let flag)?: self = .boolean(flag)
        case .integer(let number)?: self = .integer(number)
        case .float(let number)?: self = .float(number)
        case .string(let text)?: self = .string(text)
        }
    }
}
