import NIOConcurrencyHelpers

/// The steps of one validation, in order, for `vrules dns ... --trace` (as `delv +vtrace`
/// prints them): zones, DS and DNSKEY key tags and algorithms, which signature verified or
/// why not, the denial proof used.
public final class ValidationTrace: Sendable {
    private let lines = NIOLockedValueBox([String]())

    public init() {}

    package func note(_ line: @autoclosure () -> String) {
        let text = line()
        self.lines.withLockedValue { $0.append(text) }
    }

    public var steps: [String] { self.lines.withLockedValue { $0 } }
}

extension Optional where Wrapped == ValidationTrace {
    /// Builds the line only when tracing: validation without a trace pays nothing for it.
    package func note(_ line: @autoclosure () -> String) {
        if let trace = self { trace.note(line()) }
    }
}
