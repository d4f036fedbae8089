import ArgumentParser

/// What a rule's `accept()` answers Postfix with: `DUNNO` (Postfix's own restrictions still
/// apply) or `OK` (the restriction list ends there). `serve` answers so; `run` and `test`
/// take the same option so that they count the answers that carry a header as `serve` gives
/// them: only a `DUNNO` answer carries one, so under `OK` an accepted recipient carries none.
struct AcceptActionOption: ParsableArguments {
    @Option(name: .customLong("accept-action"), help: "What accept() answers: DUNNO or OK.")
    var acceptAction: String = "DUNNO"

    /// Whether an accepted recipient's answer is `DUNNO`, which can carry a header.
    var acceptCarriesHeaders: Bool { self.acceptAction == "DUNNO" }

    func validate() throws {
        guard ["DUNNO", "OK"].contains(self.acceptAction) else {
            throw ValidationError("--accept-action: expected DUNNO or OK")
        }
    }
}
