// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "vrules",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vrules", targets: ["vrules"]),
        .library(name: "Rules", targets: ["Rules"]),
        .library(name: "DNS", targets: ["DNS"]),
        .library(name: "DNSResolver", targets: ["DNSResolver"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        .target(name: "Lua", dependencies: ["CLuaShim", "CLua"]),
        .systemLibrary(name: "CIDN2", pkgConfig: "libidn2", providers: [.apt(["libidn2-dev"])]),
        .target(name: "OperatorFiles"),
        .target(name: "ListenAddress"),
        .target(name: "DNS", dependencies: ["CIDN2", "OperatorFiles"]),
        .target(name: "Spelling"),
        .target(name: "OneLineText"),
        .target(name: "TOML", dependencies: ["OneLineText"]),
        .systemLibrary(name: "CEpoll"),
        .target(
            name: "DNSResolver",
            dependencies: [
                "DNS", "CEpoll", "OperatorFiles",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .target(
            name: "Configuration",
            dependencies: [
                "TOML", "DNS", "DNSResolver", "Spelling", "OperatorFiles", "ListenAddress",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(name: "Rules", dependencies: ["Lua", "DNS", "Spelling", "CLuaShim", "CLua", "OperatorFiles"]),
        .target(name: "CPolicyScan"),
        .target(
            name: "ServiceManager",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(name: "CCPUAffinity"),
        .target(
            name: "Policy",
            dependencies: [
                "Rules", "DNS", "CPolicyScan", "CCPUAffinity", "ListenAddress", "OneLineText",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .target(name: "RuleTesting", dependencies: ["Rules", "DNS", "Lua", "Policy", "Spelling", "OneLineText", "OperatorFiles"]),
        .target(
            name: "Lint",
            dependencies: [
                "Rules", "Lua", "DNS", "Configuration", "Spelling", "OneLineText", "CLuaShim", "CLua", "OperatorFiles",
                "ListenAddress", "RuleTesting", "Policy",
            ]
        ),
        .executableTarget(
            name: "vrules",
            dependencies: [
                "Rules", "DNS", "DNSResolver", "Configuration", "Lint", "RuleTesting", "Policy", "ServiceManager", "OneLineText", "OperatorFiles",
                "ListenAddress",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "VrulesBenchmarks",
            dependencies: ["Rules", "DNS", "Lua", "Policy", .product(name: "NIOPosix", package: "swift-nio")],
            exclude: ["plain_policy.lua"]
        ),
        // Coverage-guided fuzzing of the parsers that read peers' and operators' input, and of the
        // rule engine under a script's hands (scripts/fuzz.sh builds it with libFuzzer; without
        // it, it replays saved inputs).
        .executableTarget(
            name: "VrulesFuzz",
            dependencies: ["Configuration", "DNS", "DNSResolver", "DNSTestSupport", "Lint", "Policy", "Rules", "RuleTesting", "TOML",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "LuaTests", dependencies: ["Lua", "Rules", "DNS", "CLuaShim", "RuleTesting"]),
        .testTarget(name: "DNSTests", dependencies: ["DNS"]),
        .testTarget(name: "OperatorFilesTests", dependencies: ["OperatorFiles"]),
        // RFC 7208 SPF: the conformance suite (Tests/Fixtures/spf) and hostile records.
        .testTarget(name: "SPFTests", dependencies: ["DNS", "VrulesTestSupport"]),
        .testTarget(name: "TOMLTests", dependencies: ["TOML"]),
        .testTarget(name: "ConfigurationTests", dependencies: ["Configuration", "DNSResolver", "DNS", "TOML"]),
        .testTarget(
            name: "RulesTests",
            dependencies: [
                "Rules", "DNS", "DNSResolver", "DNSTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "DNSResolverTests",
            dependencies: [
                "DNSResolver", "Configuration", "DNS", "VrulesTestSupport", "DNSTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "RuleTestingTests", dependencies: ["RuleTesting", "Rules"]),
        .testTarget(
            name: "PolicyTests",
            dependencies: [
                "Policy", "Rules", "DNS", "VrulesTestSupport", "ListenAddress",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ServiceManagerTests",
            dependencies: [
                "ServiceManager", "VrulesTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "VrulesTestSupport", path: "Tests/Support"),
        // The scripted DNS server for fault injection: test-only, so kept out of DNSResolver.
        .target(
            name: "DNSTestSupport",
            dependencies: [
                "DNSResolver", "DNS",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/DNSSupport"
        ),
        .testTarget(name: "LintTests", dependencies: ["Lint", "Rules", "VrulesTestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["vrules", "Policy", "DNS", "DNSResolver", "VrulesTestSupport", "DNSTestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["vrules", "VrulesTestSupport"]),
        .testTarget(name: "DNSSECTests", dependencies: ["vrules", "VrulesTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
