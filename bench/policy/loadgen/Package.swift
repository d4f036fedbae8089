// swift-tools-version:5.9
// The policy-server load generator: no dependencies, blocking sockets, one thread per
// connection (as Postfix runs one smtpd process per SMTP session).
import PackageDescription

let package = Package(
    name: "PolicyLoad",
    targets: [
        .executableTarget(
            name: "PolicyLoad",
            path: "Sources/PolicyLoad"
        ),
    ]
)
