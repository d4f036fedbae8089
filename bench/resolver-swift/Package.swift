// swift-tools-version:6.0
// The resolver benchmark, kept out of the main package so that it adds no target there.
// Run it through ../run-resolver-bench.sh, which starts Knot and the Rust comparison.
import PackageDescription

let package = Package(
    name: "resolver-bench",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "vrules", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "ResolverBench",
            dependencies: [
                .product(name: "DNSResolver", package: "vrules"),
                .product(name: "DNS", package: "vrules"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: [.unsafeFlags(["-Ounchecked"])]
        ),
    ],
    swiftLanguageModes: [.v5]
)
