import NIOConcurrencyHelpers

/// Whether `vrules serve` is in a dry run now (`[policy] dry_run`, `--dry-run`): set at start,
/// changed by a reload, read by the status lines.
final class DryRunState: Sendable {
    private let on: NIOLockedValueBox<Bool>

    init(_ on: Bool) {
        self.on = NIOLockedValueBox(on)
    }

    var isOn: Bool { self.on.withLockedValue { $0 } }

    /// Sets it; what changed, as the log and `vrules reload` say it, or nil.
    func change(to next: Bool) -> String? {
        let previous = self.on.withLockedValue { on in defer { on = next }; return on }
        guard previous != next else { return nil }
        return next ? "dry run on from now on: refusals are logged and answered DUNNO, no mail is refused"
                    : "dry run off from now on: the rules' refusals are sent"
    }
}
