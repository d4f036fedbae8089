/// Lua 5.4 opcodes, numbered as in lopcodes.h (5.4.0 to 5.4.6 share this table).
public enum LuaOpcode: UInt8, Sendable {
    case move = 0, loadI, loadF, loadK, loadKX, loadFalse, lFalseSkip, loadTrue, loadNil
    case getUpval, setUpval, getTabUp, getTable, getI, getField
    case setTabUp, setTable, setI, setField, newTable, `self`
    case addI, addK, subK, mulK, modK, powK, divK, idivK, bandK, borK, bxorK, shrI, shlI
    case add, sub, mul, mod, pow, div, idiv, band, bor, bxor, shl, shr
    case mmBin, mmBinI, mmBinK, unm, bnot, not, len, concat, close, tbc, jmp
    case eq, lt, le, eqK, eqI, ltI, leI, gtI, geI, test, testSet
    case call, tailCall, `return`, return0, return1
    case forLoop, forPrep, tForPrep, tForCall, tForLoop, setList, closure, vararg, varargPrep, extraArg
}

/// One decoded instruction (lopcodes.h layout: op 7 bits, A 8, k 1, B 8, C 8; Bx 17; sJ 25).
public struct LuaInstruction: Sendable {
    public var raw: UInt32

    public init(_ raw: UInt32) { self.raw = raw }

    public var opcode: LuaOpcode? { LuaOpcode(rawValue: UInt8(self.raw & 0x7F)) }
    public var a: Int { Int((self.raw >> 7) & 0xFF) }
    public var k: Bool { (self.raw >> 15) & 1 != 0 }
    public var b: Int { Int((self.raw >> 16) & 0xFF) }
    public var c: Int { Int((self.raw >> 24) & 0xFF) }
    public var bx: Int { Int(self.raw >> 15) }
    /// Signed Bx (excess-K with K = 2^16 - 1).
    public var sbx: Int { self.bx - 0xFFFF }
    /// Signed jump offset (excess-K with K = 2^24 - 1).
    public var sj: Int { Int(self.raw >> 7) - 0xFF_FFFF }
    /// Signed 8-bit immediates of LOADI-like forms use sBx; sB/sC use excess 127.
    public var sc: Int { self.c - 0x7F }

    /// Whether the instruction writes register A (some write more registers after it).
    var writesA: Bool {
        switch self.opcode {
        case nil, .setTabUp?, .setTable?, .setI?, .setField?, .setUpval?, .jmp?, .eq?, .lt?, .le?, .eqK?, .eqI?, .ltI?,
             .leI?, .gtI?, .geI?, .test?, .return?, .return0?, .return1?, .setList?, .mmBin?, .mmBinI?, .mmBinK?,
             .extraArg?, .varargPrep?, .close?, .tbc?:
            return false
        default:
            return true
        }
    }

    /// The pc this instruction may jump to besides the next one, if any.
    func jumpTarget(at pc: Int) -> Int? {
        switch self.opcode {
        case .jmp: return pc + 1 + self.sj
        case .forLoop, .tForLoop: return pc + 1 - self.bx
        case .forPrep: return pc + 1 + self.bx + 1
        case .tForPrep: return pc + 1 + self.bx
        case .lFalseSkip: return pc + 2
        case .eq, .lt, .le, .eqK, .eqI, .ltI, .leI, .gtI, .geI, .test, .testSet: return pc + 2
        case .loadKX: return nil
        default: return nil
        }
    }
}
