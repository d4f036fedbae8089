// swift-tools-version:5.9
// The policy-server load generator: no dependencies. By default one thread waits on every
// connection with epoll (the generator shares the cores with the server it measures);
// `--io threads` gives each connection a thread and a blocking socket instead, as Postfix
// runs one smtpd process per SMTP session.
import PackageDescription

let package = Package(
    name: "PolicyLoad",
    targets: [
        .systemLibrary(name: "CEpoll", path: "Sources/CEpoll"),
        .executableTarget(
            name: "PolicyLoad",
            dependencies: ["CEpoll"],
            path: "Sources/PolicyLoad"
        ),
    ]
)
