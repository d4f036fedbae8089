import OperatorFiles
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A fresh folder under /tmp, removed with what it holds when the test ends.
private struct Scratch: ~Copyable {
    let path: String

    init() {
        var template = Array("/tmp/vrules-input-XXXXXX".utf8CString)
        _ = mkdtemp(&template)
        self.path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let file = self.path + "/" + name
        let descriptor = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        return file
    }

    deinit {
        _ = system("rm -rf '\(self.path)'")
    }
}

@Suite("InputFile: what an operator names is read whole, or refused at once with the reason")
struct InputFileTests {
    @Test("a regular file is read whole, at the limit too; an empty one is empty")
    func regular() throws {
        let scratch = Scratch()
        let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(try InputFile.bytes(atPath: scratch.write("data", bytes), limit: 70_000) == bytes)
        #expect(try InputFile.bytes(atPath: scratch.write("empty", []), limit: 10) == [])
        #expect(try InputFile.text(atPath: scratch.write("text", Array("héllo\n".utf8)), limit: 100) == "héllo\n")
        // Through a symbolic link.
        symlink(scratch.path + "/text", scratch.path + "/link")
        #expect(try InputFile.text(atPath: scratch.path + "/link", limit: 100) == "héllo\n")
    }

    @Test("what is not there, a folder, a FIFO and a device are refused by kind, and nothing waits")
    func notRegular() throws {
        let scratch = Scratch()
        #expect(throws: InputFileError(.missing, "No such file or directory")) {
            try InputFile.bytes(atPath: scratch.path + "/nothing", limit: 10)
        }
        #expect(throws: InputFileError(.missing, "Not a directory")) {
            try InputFile.bytes(atPath: scratch.write("plain", [1]) + "/below", limit: 10)
        }
        #expect(throws: InputFileError(.notRegularFile, "not a regular file (a folder)")) {
            try InputFile.bytes(atPath: scratch.path, limit: 10)
        }
        // No writer ever opens it: opening it to read would wait for one.
        mkfifo(scratch.path + "/fifo", 0o644)
        #expect(throws: InputFileError(.notRegularFile, "not a regular file (a FIFO)")) {
            try InputFile.bytes(atPath: scratch.path + "/fifo", limit: 10)
        }
        #expect(throws: InputFileError(.notRegularFile, "not a regular file (a character device)")) {
            try InputFile.bytes(atPath: "/dev/zero", limit: 1 << 30)
        }
    }

    @Test("a file over the limit is refused by its size, before it is read")
    func tooLarge() throws {
        let scratch = Scratch()
        #expect(throws: InputFileError(.tooLarge, "larger than 1 KiB")) {
            try InputFile.bytes(atPath: scratch.write("big", [UInt8](repeating: 65, count: 1025)), limit: 1024)
        }
        // A sparse file of 2 GiB: refused by its size alone (reading it would take seconds).
        let sparse = scratch.write("sparse", [])
        #expect(truncate(sparse, 2 << 30) == 0)
        #expect(throws: InputFileError(.tooLarge, "larger than 16 MiB")) {
            try InputFile.bytes(atPath: sparse, limit: 16 << 20)
        }
    }

    @Test("text that is not UTF-8 is refused with the line of its first bad byte")
    func notUTF8() throws {
        let scratch = Scratch()
        let latin1: [UInt8] = Array("-- first\n-- second\nlocal name = \"".utf8) + [0xE9] + Array("t\u{e9}\"\n".utf8)
        #expect(throws: InputFileError(.notUTF8, "not UTF-8 text (line 3)")) {
            try InputFile.text(atPath: scratch.write("latin1.lua", latin1), limit: 100)
        }
        #expect(throws: InputFileError(.notUTF8, "not UTF-8 text (line 1)")) {
            try InputFile.text(atPath: scratch.write("cut.lua", [0x61, 0xE2, 0x82]), limit: 100)
        }
        // The bytes themselves are read.
        #expect(try InputFile.bytes(atPath: scratch.path + "/latin1.lua", limit: 100) == latin1)
    }
}
