#if FUZZING
import Glibc

/// libFuzzer's entry point: the target is named by `VRULES_FUZZ_TARGET` (scripts/fuzz.sh).
nonisolated(unsafe) private var selectedTarget: FuzzTarget? = nil

/// libFuzzer's driver, given the command line and the function to call per input. SwiftPM
/// links an executable target's own `main`, so this one starts libFuzzer instead of
/// relying on the `main` libFuzzer brings.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

@main
struct RunFuzzer {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, fuzzOneInput))
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    if selectedTarget == nil {
        let name = getenv("VRULES_FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            fatalError("VRULES_FUZZ_TARGET: one of \(FuzzTarget.allCases.map(\.rawValue)), not '\(name)'")
        }
        selectedTarget = target
    }
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget!.run(input)
    return 0
}
#else
import Foundation

/// Without libFuzzer: runs saved inputs through a target, e.g. a finding to replay it
/// (`swift run VrulesFuzz dns-message crash-...`), or a directory of them: the regression
/// corpus the test suite replays (Tests/Fixtures/fuzz/TARGET). A broken property stops the
/// process; the input it broke on is the last one named.
@main
struct ReplayInputs {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count > 1 else {
            print("usage: VrulesFuzz TARGET FILE|DIRECTORY...  (TARGET: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))")
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            for file in Self.inputs(at: path) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    print("\(file): cannot read")
                    exit(1)
                }
                // Named before it runs, and flushed: a crash leaves it as the last line.
                print("\(file): ", terminator: "")
                fflush(nil)
                target.run(Array(data))
                print("ok")
                count += 1
            }
        }
        print("\(name): \(count) inputs, every property held")
    }

    /// The file at `path`, or the files in the directory at `path` (sorted, not recursive).
    private static func inputs(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [path]
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else {
            print("\(path): cannot read the directory")
            exit(1)
        }
        return names.filter { !$0.hasPrefix(".") }.sorted().map { path + "/" + $0 }
    }
}
#endif
