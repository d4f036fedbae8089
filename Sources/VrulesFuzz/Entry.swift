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
/// (`swift run VrulesFuzz dns-message crash-...`).
@main
struct ReplayInputs {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count > 1 else {
            print("usage: VrulesFuzz TARGET FILE...  (TARGET: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))")
            exit(2)
        }
        for path in arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("\(path): cannot read")
                exit(1)
            }
            target.run(Array(data))
            print("\(path): ok")
        }
    }
}
#endif
