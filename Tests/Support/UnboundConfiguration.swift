import Foundation

/// The `unbound.conf` for a recursive upstream on loopback that does not validate: it
/// forwards every question to one authoritative server and passes DNSSEC records through,
/// so that the validating stub in front of it (vrules, `delv`) does the checking.
public enum UnboundConfiguration {
    /// The `server:` clause every test Unbound shares: loopback only, in the foreground, its
    /// files in `directory`, asking servers on loopback; `moduleConfig` says whether it
    /// validates ("validator iterator") or not ("iterator").
    public static func serverClause(directory: URL, port: UInt16, moduleConfig: String) -> String {
        """
        server:
            interface: 127.0.0.1
            port: \(port)
            do-daemonize: no
            username: ""
            chroot: ""
            directory: "\(directory.path)"
            pidfile: "\(directory.path)/unbound.pid"
            use-syslog: no
            logfile: ""
            verbosity: 1
            do-ip6: no
            do-not-query-localhost: no
            access-control: 127.0.0.0/8 allow
            module-config: "\(moduleConfig)"
            qname-minimisation: no

        """
    }

    /// Forwards `.` to 127.0.0.1:`upstreamPort`. `privateZones` are names Unbound would
    /// otherwise answer itself (`test.`, the documentation reverse zones): they get
    /// `local-zone: ... nodefault`, or delegations under them look broken.
    public static func forwarding(directory: URL, port: UInt16, upstreamPort: UInt16, privateZones: [String]) -> String {
        var config = Self.serverClause(directory: directory, port: port, moduleConfig: "iterator")
        for zone in privateZones { config += "    local-zone: \"\(zone)\" nodefault\n" }
        config += """
            forward-zone:
                name: "."
                forward-addr: 127.0.0.1@\(upstreamPort)

            """
        return config
    }
}
