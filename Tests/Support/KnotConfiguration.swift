import Foundation

/// The `knot.conf` the tests run Knot DNS with: one loopback port, everything under one
/// directory, zone files read whole and never written back.
public enum KnotConfiguration {
    /// The configuration up to and including `zone:`; append one `  - domain:` entry per zone.
    public static func header(directory: URL, port: UInt16) -> String {
        """
        server:
            rundir: "\(directory.path)"
            listen: 127.0.0.1@\(port)
        database:
            storage: "\(directory.path)"
        control:
            listen: "\(directory.path)/knot.sock"
        template:
          - id: default
            storage: "\(directory.path)"
            zonefile-sync: -1
            zonefile-load: whole
            journal-content: none
        zone:

        """
    }
}
