import OperatorFiles
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("OutputFile: a report replaces a file whole, and a device or FIFO is written to, never replaced")
struct OutputFileTests {
    static func scratch() -> String {
        var template = Array("/tmp/vrules-output-XXXXXX".utf8CString)
        _ = mkdtemp(&template)
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func contents(_ path: String) -> [UInt8]? {
        try? InputFile.bytes(atPath: path, limit: 1 << 20)
    }

    static func mode(_ path: String, following: Bool = true) -> mode_t {
        var status = stat()
        _ = following ? stat(path, &status) : lstat(path, &status)
        return status.st_mode
    }

    @Test("a new file, then that file replaced whole with its mode kept; through a link the link stays")
    func regularFiles() throws {
        let folder = Self.scratch()
        defer { _ = system("rm -rf '\(folder)'") }
        let report = folder + "/report.xml"
        try OutputFile.write(Array("first".utf8), toPath: report)
        #expect(Self.contents(report) == Array("first".utf8))
        #expect(Self.mode(report) & 0o777 == 0o644)
        chmod(report, 0o600)
        try OutputFile.write(Array("second".utf8), toPath: report)
        #expect(Self.contents(report) == Array("second".utf8))
        #expect(Self.mode(report) & 0o777 == 0o600)
        symlink(report, folder + "/link.xml")
        try OutputFile.write(Array("third".utf8), toPath: folder + "/link.xml")
        #expect(Self.mode(folder + "/link.xml", following: false) & S_IFMT == S_IFLNK)
        #expect(Self.contents(report) == Array("third".utf8))
        // Nothing is left beside it.
        #expect(system("test $(ls -A '\(folder)' | wc -l) -eq 2") == 0)
    }

    @Test("a missing folder, a folder, and a full device are errors with the reason; the device stays a device")
    func errors() throws {
        let folder = Self.scratch()
        defer { _ = system("rm -rf '\(folder)'") }
        #expect(throws: OutputFileError("No such file or directory")) {
            try OutputFile.write([1], toPath: folder + "/missing/report.xml")
        }
        #expect(throws: OutputFileError("a folder, not a file")) {
            try OutputFile.write([1], toPath: folder)
        }
        #expect(throws: OutputFileError("No space left on device")) {
            try OutputFile.write([1], toPath: "/dev/full")
        }
        #expect(Self.mode("/dev/full") & S_IFMT == S_IFCHR)
        try OutputFile.write([1, 2, 3], toPath: "/dev/null")
        #expect(Self.mode("/dev/null") & S_IFMT == S_IFCHR)
    }

    @Test("a FIFO is written to, and stays a FIFO")
    func fifo() async throws {
        let folder = Self.scratch()
        defer { _ = system("rm -rf '\(folder)'") }
        let fifo = folder + "/report.fifo"
        #expect(mkfifo(fifo, 0o644) == 0)
        let reader = Task.detached { () -> [UInt8] in
            let descriptor = open(fifo, O_RDONLY)
            defer { close(descriptor) }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(descriptor, &buffer, buffer.count)
                if count <= 0 { return bytes }
                bytes += buffer[0..<count]
            }
        }
        try OutputFile.write(Array("<testsuites/>".utf8), toPath: fifo)
        #expect(await reader.value == Array("<testsuites/>".utf8))
        #expect(Self.mode(fifo) & S_IFMT == S_IFIFO)
    }
}
