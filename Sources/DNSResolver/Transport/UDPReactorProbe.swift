/// For the service manager's watchdog: the thread that reads every UDP reply of the network
/// resolver (`UDPQueryReactor`) is not an event loop, and probing the event loops alone would
/// keep a process whose reactor is stuck (every DNS question then times out, and all mail is
/// deferred) pinging as healthy.
public enum UDPReactorProbe {
    /// Returns once the reactor has run a pass; at once when the process has no reactor (every
    /// UDP exchange then fails at once as a network error, which the rules see).
    public static func run() async {
        guard let reactor = UDPQueryReactor.shared else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            reactor.probe { continuation.resume() }
        }
    }
}
