import ArgumentParser
import DNS
import Foundation
import ListenAddress
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Policy
import Prometheus
import Rules
import ServiceLifecycle
import ServiceManager

/// `vrules serve`: the Postfix SMTPD policy delegation server.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Answer Postfix policy requests (check_policy_service) with the rules' verdicts."
    )

    @OptionGroup var resolverOptions: ResolverOptions

    @Option(help: "The rule script.")
    var rules: String = "rules/main.lua"

    @Option(help: "Listen on HOST:PORT, [IPV6]:PORT or unix:PATH (repeatable; default 127.0.0.1:10040).")
    var listen: [String] = []

    @Option(help: "Serve Prometheus metrics on HOST:PORT at /metrics.")
    var metrics: String?

    @Option(help: ArgumentHelp("Take `vrules reload` and `vrules status` on this UNIX socket (mode 0600: the server's user and root).",
                               valueName: "path"))
    var control: String?

    @OptionGroup var accept: AcceptActionOption

    @Flag(name: .customLong("dry-run"),
          help: "Log and count the refusals, and answer DUNNO instead (as [policy] dry_run = true): no mail is refused.")
    var dryRun = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    /// Postfix's default `smtpd_policy_service_timeout`: how long smtpd waits for an answer.
    static let postfixPolicyTimeout: Double = 100

    /// A stage allowed to run longer than Postfix waits is cut off by Postfix, not by vrules:
    /// smtpd answers its client `smtpd_policy_service_default_action` (451 4.3.5) and asks
    /// again on a new connection, so one slow stage runs twice and is answered by neither.
    /// Returns the warning as `vrules reload` shows it, nil when there is none.
    @discardableResult
    static func warnIfPostfixGivesUpFirst(_ limits: RuleLimits, logger: Logger) -> String? {
        guard limits.stageTimeout > Self.postfixPolicyTimeout else { return nil }
        let warning = """
            stage_timeout is longer than Postfix waits for a policy answer by default \
            (smtpd_policy_service_timeout = 100s): raise that in main.cf to match, or lower stage_timeout
            """
        logger.warning("[limits] \(warning)", metadata: ["stage_timeout": "\(Int(limits.stageTimeout))s"])
        return "[limits] stage_timeout = \(Int(limits.stageTimeout))s " + warning.dropFirst("stage_timeout ".count)
    }

    /// How long the start waits for the blocklists' first checks before it listens.
    static let startCheckWait: Duration = .seconds(5)

    /// Checks the `[dnsbl]` zones on every engine at once, and waits for the checks at most
    /// `startCheckWait`: a resolver that does not answer at boot must not keep the policy
    /// socket closed for its whole timeout (`(1 + attempts) × timeout`, up to hours as
    /// configured), nor past the service manager's start timeout, which kills a `Type=notify`
    /// start that has not said READY=1. Checks still waiting then finish while the server
    /// serves (a zone not checked yet is checked alongside its first query).
    static func checkBlocklistsAtStart(_ engines: [RuleEngine], zones: [String], logger: Logger) async {
        guard !zones.isEmpty else { return }
        let checks = Task {
            await withDiscardingTaskGroup { group in
                for engine in engines { group.addTask { await engine.checkDNSBLHealth(zones: zones) } }
            }
        }
        // Whichever comes first; awaiting the checks cannot be cancelled, so a task group
        // (which waits for all its children) would wait for them whatever the timer said.
        let finished: Bool = await withCheckedContinuation { continuation in
            let resumed = NIOLockedValueBox(false)
            let resume = { @Sendable (finished: Bool) in
                if resumed.withLockedValue({ done in defer { done = true }; return !done }) { continuation.resume(returning: finished) }
            }
            Task { await checks.value; resume(true) }
            Task { try? await Task.sleep(for: Self.startCheckWait); resume(false) }
        }
        if !finished {
            logger.notice("the blocklists' first checks are still waiting for DNS; serving meanwhile",
                          metadata: ["zones": "\(zones.joined(separator: ","))", "waited": "\(Self.startCheckWait)"])
        }
    }

    func validate() throws {
        guard self.listen.count <= ListenAddress.maximumCount else {
            throw ValidationError("--listen: at most \(ListenAddress.maximumCount) addresses, got \(self.listen.count)")
        }
        var addresses: [ListenAddress] = []
        for text in self.listen {
            switch ListenAddress.parse(text) {
            case .success(let address):
                if let conflict = ListenAddress.conflict(address, with: addresses[...]) { throw ValidationError("--listen: \(conflict)") }
                addresses.append(address)
            case .failure(let problem):
                throw ValidationError("--listen: '\(text)': \(problem)")
            }
        }
        if let metrics {
            // `unix:PATH` parses as a listen address, but the endpoint listens on TCP only:
            // refused here, where it was once taken and the server started without metrics.
            guard case .tcp? = ListenAddress(metrics) else {
                throw ValidationError("--metrics: '\(metrics)' is not HOST:PORT (metrics are served over TCP only)")
            }
        }
        if let control {
            guard !control.isEmpty else { throw ValidationError("--control: the path is empty") }
            if case .failure(let problem) = ListenAddress.parse("unix:" + control) {
                throw ValidationError("--control: '\(control)': \(problem)")
            }
        }
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("--log-level: unknown level '\(self.logLevel)'")
        }
    }

    func run() async throws {
        // Descriptors 3, 4, ... passed by the service manager: checked before anything here
        // opens a descriptor of its own, which could take the number of one that was not passed.
        let environment = ProcessInfo.processInfo.environment
        let inherited: [Int32]
        do {
            inherited = try InheritedSockets.fromEnvironment(environment)
        } catch {
            throw UsageFailure.exit("cannot serve the sockets the service manager passed: \(error)")
        }
        // Before anything uses SwiftNIO's shared event loop group.
        PolicyEventLoops.sizeToAffinity()
        let level = Logger.Level(rawValue: self.logLevel) ?? .info
        let toJournal = JournalStream.isStandardError(environment)
        LoggingSystem.bootstrap { label in
            var handler = OneLineLogHandler(toJournal ? StreamLogHandler(label: label, stream: JournalStream(), metadataProvider: nil)
                                                      : StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "vrules")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let configuration: ConfigurationFile
        do {
            configuration = try self.resolverOptions.loadConfigurationFile()
        } catch {
            throw UsageFailure.exit("\(error)")
        }
        let resolverOptions = self.resolverOptions
        let rules = self.rules
        let counters = DNSOutcomeCounters()
        let observer: @Sendable (DNSQuestion, String) -> Void = { _, outcome in counters.increment(outcome) }
        let spfCounters = SPFResultCounters()
        let boundCounters: [StageBound: Metrics.Counter] = [
            .logLines: Metrics.Counter(label: "vrules_rules_log_lines_dropped_total"),
            .dnsCalls: Metrics.Counter(label: "vrules_rules_dns_calls_refused_total"),
        ]
        // The engines of one load share the resolvers (and so their caches and sockets).
        let loadEngine: @Sendable (any DNSResolverSelecting, ConfigurationFile, EventLoopExecutor) async throws -> RuleEngine = {
            resolvers, configuration, loop in
            let engine = try RuleEngine(scriptPath: rules, resolvers: resolvers, limits: configuration.limits, tracing: false,
                                        executor: loop, lookupExecutor: loop,
                                        logHandler: { record in
                Logger(label: "vrules.rules").log(level: Logger.Level(ruleLevel: record.level), "\(record.message)", metadata: [
                    "rule": "\(record.rule ?? "-")", "stage": "\(record.stage?.rawValue ?? "load")",
                ])
            })
            await engine.observeDNSQueries(observer)
            await engine.observeSPFResults { result, reused in spfCounters.count(result, reused: reused) }
            await engine.observeStageBounds { bound in boundCounters[bound]?.increment() }
            await engine.useDNSBLPolicies(configuration.configuration.dnsbl)
            // 1 while a blocklist zone fails its RFC 5782 test points (it answers error), else 0.
            await engine.observeDNSBLHealth { zone, failure in
                Metrics.Gauge(label: "vrules_dnsbl_zone_failing", dimensions: [("zone", zone)]).record(failure == nil ? 0 : 1)
            }
            return engine
        }
        // One engine (one Lua state) per CPU the process may run on (PolicyEventLoops), each
        // running on one of the event loops the policy connections are read on: a slow stage
        // delays only its own state's work, and a request is read, decided and answered on one
        // thread. A reload reads the configuration again: a file with mistakes fails the
        // reload and the running rules, resolvers and limits stay.
        // One executor per loop, kept across reloads: the engines and their callers share it.
        let loops = MultiThreadedEventLoopGroup.singleton.makeIterator().map(EventLoopExecutor.init)
        Metrics.Gauge(label: "vrules_policy_event_loops").record(loops.count)
        let loadEngines: @Sendable (ConfigurationFile) async throws -> [RuleEngine] = { configuration in
            let resolvers = try resolverOptions.makeResolvers(using: configuration)
            var engines: [RuleEngine] = []
            for loop in loops { engines.append(try await loadEngine(resolvers, configuration, loop)) }
            return engines
        }
        let engines: [RuleEngine]
        do {
            engines = try await loadEngines(configuration)
        } catch let error as RuleLoadError {
            throw UsageFailure.exit("cannot load rules: \(error)")
        } catch {
            throw UsageFailure.exit("cannot start: \(error)")
        }
        logger.info("rule engines started", metadata: ["event_loops": "\(loops.count)"])
        ReloadService.recordStart()
        Self.warnIfPostfixGivesUpFirst(configuration.limits, logger: logger)
        // A reload applies the rules, the resolvers, [limits] and the [policy] settings of how
        // requests are answered (max_recipients, unknown_state_action, dry_run); the others shape
        // the listeners made at start, so a change to one of them is named as waiting for a
        // restart rather than taken in silence.
        // (`--listen` on the command line, or sockets the service manager passed, win over the file's.)
        let listenNotFromFile = !self.listen.isEmpty || !inherited.isEmpty
        let fixedAtStart = configuration.settingsFixedAtStart
        // `[policy] dry_run` (or --dry-run, which keeps it on) is what a reload may turn on or
        // off: watched in a dry run, new rules are enforced by editing the file and reloading.
        let dryRunFlag = self.dryRun
        let dryRun = DryRunState(dryRunFlag || configuration.dryRun)
        // What the log says is also what `vrules reload` prints under its outcome.
        let reloadEngines: @Sendable () async throws -> ReloadService.Loaded = {
            let reloaded = try resolverOptions.loadConfigurationFile()
            var warnings: [String] = []
            for ((key, running), (_, value)) in zip(fixedAtStart, reloaded.settingsFixedAtStart)
            where running != value && !(listenNotFromFile && key == "policy.listen") {
                logger.warning("a setting changed in the configuration file applies when vrules serve starts again, not on reload",
                               metadata: ["key": "\(key)", "running": "\(running)", "file": "\(value)"])
                warnings.append("\(key) changed in the configuration file (running \(running), file \(value)): "
                    + "it applies when vrules serve starts again, not on reload")
            }
            let engines = try await loadEngines(reloaded)
            if let warning = Self.warnIfPostfixGivesUpFirst(reloaded.limits, logger: logger) { warnings.append(warning) }
            let dryRunNext = dryRunFlag || reloaded.dryRun
            if let change = dryRun.change(to: dryRunNext) {
                logger.notice("\(change)")
                warnings.append(change)
            }
            let settings = PolicyService.ReloadedSettings(
                maximumRecipients: reloaded.maximumRecipients ?? RecipientLimit.defaultMaximum,
                unknownStateAction: reloaded.unknownStateAction ?? PolicyService.Configuration.defaultUnknownStateAction,
                dryRun: dryRunNext)
            return ReloadService.Loaded(engines: engines, warnings: warnings, settings: settings)
        }

        // The blocklists of [dnsbl] are checked against their test points at start, and again
        // every DNSBLHealth interval while the server runs (zones only named in rules are
        // checked alongside their first query).
        let configuredZones = configuration.configuration.dnsbl.zones.keys.sorted()
        await Self.checkBlocklistsAtStart(engines, zones: configuredZones, logger: logger)

        let serviceConfiguration = configuration.policyService(acceptAction: self.accept.acceptAction, dryRun: dryRun.isOn)
        if serviceConfiguration.dryRun {
            logger.notice("dry run: refusals are logged and counted, and answered DUNNO; no mail is refused")
        }
        let service = PolicyService(engines: engines, configuration: serviceConfiguration, logger: logger)
        var protocolLimits = PolicyProtocolLimits()
        if let connections = configuration.maximumConnections { protocolLimits.maximumConnections = connections }
        // Under socket activation the service manager's sockets are the ones served: it owns
        // the addresses (its .socket unit), and --listen and [policy] listen are not bound.
        if !inherited.isEmpty && (!self.listen.isEmpty || !configuration.listen.isEmpty) {
            logger.notice("serving the sockets the service manager passed; --listen and [policy] listen are not bound",
                          metadata: ["sockets": "\(inherited.count)"])
        }
        let listen = !inherited.isEmpty ? []
            : !self.listen.isEmpty ? self.listen : (!configuration.listen.isEmpty ? configuration.listen : ["127.0.0.1:10040"])
        let addresses = try listen.map { text in
            // The configuration's addresses were checked as it loaded, the option's by validate().
            guard let address = ListenAddress(text) else {
                throw UsageFailure.exit("\(self.resolverOptions.config): policy.listen: '\(text)' is not HOST:PORT, [IPV6]:PORT or unix:PATH")
            }
            return address
        }
        if let control, addresses.contains(.unix(path: control)) {
            throw UsageFailure.exit("--control: \(control) is also where the policy server listens; give the control socket a path of its own")
        }
        var socketAccess = UnixSocketAccess()
        if let mode = configuration.socketMode { socketAccess.mode = UnixSocketAccess.parseMode(mode) }
        if let group = configuration.socketGroup {
            guard let id = SocketGroup.id(named: group) else {
                throw UsageFailure.exit("\(self.resolverOptions.config): policy.socket_group: no group '\(group)' on this machine")
            }
            socketAccess.groupID = id
        }
        PolicyServer.raiseDescriptorLimit()
        // The listeners are bound in the group's run, after it traps SIGTERM and SIGINT: a
        // client that finds the socket open may stop the server at once, gracefully.
        let reports = ServiceManagerReports(environment: environment, engines: engines.count, dryRun: dryRun, logger: logger)
        let status = ServerStatus(rules: rules, engines: engines.count, dryRun: dryRun)
        let server = PolicyServer(service: service, listen: addresses, limits: protocolLimits, inherited: inherited, socketAccess: socketAccess,
                                  logger: logger, events: { event in reports.server(event); status.server(event) })
        if !configuredZones.isEmpty {
            Task { [service] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: DNSBLHealth().interval)
                    for engine in await service.currentEngines { await engine.checkDNSBLHealth(zones: configuredZones) }
                }
            }
        }
        var services: [any Service] = [server]
        let reloads = ReloadRequests()
        services.append(ReloadService(service: service, requests: reloads, logger: logger,
                                      events: { event in reports.reload(event); status.reload(event) }, loadEngines: reloadEngines))
        if let watchdog = reports.watchdog(environment: environment, loops: loops.map(\.loop), logger: logger) {
            services.append(watchdog)
        }
        if let metrics, case .tcp(let host, let port)? = ListenAddress(metrics) {
            let endpoint = MetricsEndpoint(registry: registry, host: host, port: port, logger: logger)
            do {
                try await endpoint.start()
            } catch {
                throw UsageFailure.exit("cannot serve metrics on \(metrics): \(PolicyListenError.reason(for: error))")
            }
            services.append(endpoint)
        }
        if let control {
            let socket = ControlSocket(path: control, requests: reloads, status: { await status.status($0, server: server) }, logger: logger)
            do {
                try await socket.start()
            } catch {
                throw UsageFailure.exit("cannot take vrules reload on \(error)")
            }
            services.append(socket)
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        do {
            try await group.run()
        } catch let error as PolicyListenError {
            throw UsageFailure.exit("cannot listen on \(error)")
        }
    }
}

extension Logger.Level {
    init(ruleLevel: String) {
        switch ruleLevel {
        case "debug": self = .debug
        case "warn": self = .warning
        case "error": self = .error
        default: self = .info
        }
    }
}

/// One counter per DNS outcome, made once: making a counter goes through the metrics
/// registry's lock and a label lookup, too much for every query. The outcomes a resolver
/// gives are made at start (so a scrape shows each from zero) and found without a lock.
final class DNSOutcomeCounters: @unchecked Sendable {
    // @unchecked: `known` never changes after init; `others` is touched only with `lock` held.
    private let known: [(outcome: String, counter: Metrics.Counter)]
    private let lock = NSLock()
    private var others: [String: Metrics.Counter] = [:]

    init() {
        let outcomes = [DNSOutcome.ok.rawValue, DNSOutcome.nxdomain.rawValue, DNSOutcome.nodata.rawValue]
            + [DNSError.Kind.timeout, .servfail, .refused, .network, .bogus, .formerr].map(\.rawValue)
        self.known = outcomes.map { ($0, Self.makeCounter($0)) }
    }

    private static func makeCounter(_ outcome: String) -> Metrics.Counter {
        Metrics.Counter(label: "vrules_dns_queries_total", dimensions: [("outcome", outcome)])
    }

    func increment(_ outcome: String) {
        if let entry = self.known.first(where: { $0.outcome == outcome }) {
            entry.counter.increment()
            return
        }
        self.lock.lock()
        let counter = self.others[outcome] ?? Self.makeCounter(outcome)
        self.others[outcome] = counter
        self.lock.unlock()
        counter.increment()
    }
}

/// The SPF results rules got, by result, and how many of them were an earlier check's result
/// reused: every counter made at start, so a scrape shows each from zero.
final class SPFResultCounters: Sendable {
    private let results: [SPFResult.Kind: Metrics.Counter]
    private let reused = Metrics.Counter(label: "vrules_spf_results_reused_total")

    init() {
        self.results = Dictionary(uniqueKeysWithValues: SPFResult.Kind.allCases.map {
            ($0, Metrics.Counter(label: "vrules_spf_results_total", dimensions: [("result", $0.rawValue)]))
        })
    }

    func count(_ result: SPFResult.Kind, reused: Bool) {
        self.results[result]?.increment()
        if reused { self.reused.increment() }
    }
}
