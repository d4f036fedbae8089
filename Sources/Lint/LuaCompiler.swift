import CLua

/// Compiles Lua source to a parsed binary chunk, or says why it does not compile, without
/// running any of it.
///
/// It works on a fresh state with no libraries: `luaL_loadbufferx` (text mode) and
/// `lua_dump` are protected on the C side and never raise into this Swift frame, and the
/// state is closed before returning. (CLuaShim's generated module map exports only its
/// umbrella header, so a shim added there could not be seen from here; none is needed.)
enum LuaCompiler {
    enum Outcome {
        case compiled(BinaryChunk)
        /// Lua's message without the `chunkname:line:` prefix, and the line.
        case syntaxError(message: String, line: Int)
        /// The dump could not be read: a mismatch between this parser and the linked Lua.
        case unreadableDump(BinaryChunkError)
    }

    /// Collects what `lua_dump` writes.
    private final class DumpBuffer {
        var bytes: [UInt8] = []
    }

    static func compile(_ text: String, chunkName: String) -> Outcome {
        switch Self.dump(text, chunkName: chunkName) {
        case .failure(let failure): return failure.outcome
        case .success(let bytes):
            do {
                return .compiled(try BinaryChunk(bytes: bytes))
            } catch {
                return .unreadableDump(error)
            }
        }
    }

    /// The binary dump of `text`, for tests of the chunk parser.
    static func dumpBytes(_ text: String, chunkName: String) -> [UInt8]? {
        if case .success(let bytes) = Self.dump(text, chunkName: chunkName) { return bytes }
        return nil
    }

    private static func dump(_ text: String, chunkName: String) -> Result<[UInt8], OutcomeBox> {
        guard let L = luaL_newstate() else { return .failure(OutcomeBox(.syntaxError(message: "not enough memory to compile", line: 1))) }
        defer { lua_close(L) }
        var text = text
        let status = text.withUTF8 { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                luaL_loadbufferx(L, chars.baseAddress, chars.count, "@" + chunkName, "t")
            }
        }
        guard status == LUA_OK else {
            var length = 0
            let message = lua_tolstring(L, -1, &length).map {
                String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self)
            } ?? "(error object is not a string)"
            return .failure(OutcomeBox(Self.syntaxError(message, chunkName: chunkName)))
        }
        let buffer = DumpBuffer()
        let written = withExtendedLifetime(buffer) { () -> Int32 in
            lua_dump(L, { _, data, size, userData in
                guard let data, let userData else { return 1 }
                let buffer = Unmanaged<DumpBuffer>.fromOpaque(userData).takeUnretainedValue()
                buffer.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: size))
                return 0
            }, Unmanaged.passUnretained(buffer).toOpaque(), 0)
        }
        guard written == 0 else { return .failure(OutcomeBox(.unreadableDump(.truncated("lua_dump failed")))) }
        return .success(buffer.bytes)
    }

    /// A failed compilation, carried through `Result`.
    private struct OutcomeBox: Error, @unchecked Sendable {
        // @unchecked: created and read on one thread, only to carry an Outcome through Result.
        var outcome: Outcome
        init(_ outcome: Outcome) { self.outcome = outcome }
    }

    /// "path:12: unexpected symbol near 'x'" → ("unexpected symbol near 'x'", 12).
    static func syntaxError(_ message: String, chunkName: String) -> Outcome {
        let prefix = chunkName + ":"
        guard message.hasPrefix(prefix) else { return .syntaxError(message: message, line: 1) }
        let rest = message.dropFirst(prefix.count)
        let digits = rest.prefix { $0.isNumber }
        guard let line = Int(digits), rest.dropFirst(digits.count).hasPrefix(": ") else {
            return .syntaxError(message: message, line: 1)
        }
        return .syntaxError(message: String(rest.dropFirst(digits.count + 2)), line: line)
    }
}
