// swift-tools-version:6.0
// The DNSSEC validation benchmark, kept out of the main package so that it adds no target
// there. Run it through ../run-dnssec-bench.sh, which starts a signing Knot.
import PackageDescription

let package = Package(
    name: "dnssec-bench",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "vrules", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        .executableTarget(
            name: "DNSSECBench",
            dependencies: [
                .product(name: "DNSResolver", package: "vrules"),
                .product(name: "DNS", package: "vrules"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)
