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
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        .target(name: "Lua", dependencies: ["CLuaShim", "CLua"]),
        .target(name: "DNS"),
        .target(
            name: "DNSResolver",
            dependencies: [
                "DNS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .target(name: "Rules", dependencies: ["Lua", "DNS", "CLuaShim", "CLua"]),
        .target(name: "RuleTesting", dependencies: ["Rules", "DNS", "Lua"]),
        .target(name: "Lint", dependencies: ["Rules", "Lua", "DNS", "DNSResolver", "CLuaShim", "CLua"]),
        .executableTarget(
            name: "vrules",
            dependencies: [
                "Rules", "DNS", "DNSResolver", "Lint", "RuleTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "VrulesBenchmarks", dependencies: ["Rules", "DNS", "Lua"], exclude: ["plain_policy.lua"]),
        .testTarget(name: "LuaTests", dependencies: ["Lua"]),
        .testTarget(name: "DNSTests", dependencies: ["DNS"]),
        .testTarget(name: "RulesTests", dependencies: ["Rules", "DNS"]),
        .testTarget(name: "DNSResolverTests", dependencies: ["DNSResolver", "DNS"]),
        .testTarget(name: "RuleTestingTests", dependencies: ["RuleTesting", "Rules"]),
        .testTarget(name: "LintTests", dependencies: ["Lint", "Rules"]),
        .testTarget(name: "CLITests", dependencies: ["vrules"]),
    ],
    swiftLanguageModes: [.v5]
)
