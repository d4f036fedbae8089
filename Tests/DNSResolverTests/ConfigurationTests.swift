import Configuration
import DNS
import NIOCore
import Testing
@testable import DNSResolver

#if canImport(Glibc)
import Glibc
#endif

struct TemporaryFileError: Error {}

/// Writes `text` to a fresh temporary file and returns its path.
func temporaryFile(_ text: String, name: String = "file") throws -> String {
    var template = Array("/tmp/vrules-\(name)-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    guard fd >= 0 else { throw TemporaryFileError() }
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func parseError(_ text: String, resolvConf: String = "/nonexistent/resolv.conf") -> DNSConfigurationError? {
    do {
        _ = try DNSConfiguration.parse(text: text, file: "vrules.toml", resolvConfPath: resolvConf)
        Issue.record("configuration was accepted")
        return nil
    } catch {
        return error
    }
}

@Suite("Configuration")
struct ConfigurationTests {
    @Test("every option of [server.dns.options] is read")
    func everyOption() throws {
        let config = try DNSConfiguration.parse(text: """
            [server.dns]
            type = "custom"
            servers = ["127.0.0.1:5300", "[::1]:5301", "192.0.2.1"]

            [server.dns.options]
            timeout = "500ms"
            attempts = 4
            rotate = true
            validate = true
            ip_strategy = "Ipv6thenIpv4"
            cache_size = 500
            num_concurrent_reqs = 3
            preserve_intermediates = false
            """, file: "vrules.toml")
        let root = config.root
        #expect(root.type == .custom)
        #expect(root.servers.map(\.description) == ["127.0.0.1:5300", "[::1]:5301", "192.0.2.1:53"])
        #expect(root.options == DNSResolverOptions(timeout: .milliseconds(500), attempts: 4, rotate: true, validate: true,
                                                   ipStrategy: .ipv6ThenIpv4, cacheSize: 500, numConcurrentReqs: 3,
                                                   preserveIntermediates: false))
    }

    @Test("durations: milliseconds, seconds, minutes and bare integers as seconds")
    func durations() throws {
        for (text, expected) in [("\"250ms\"", TimeAmount.milliseconds(250)), ("\"5s\"", .seconds(5)),
                                 ("\"1m\"", .seconds(60)), ("3", .seconds(3))] {
            let config = try DNSConfiguration.parse(text: """
                [server.dns]
                type = "google"
                [server.dns.options]
                timeout = \(text)
                """, file: "vrules.toml")
            #expect(config.root.options.timeout == expected)
        }
    }

    @Test("every ip_strategy spelling of vSMTP is accepted", arguments: IPStrategy.allCases)
    func strategies(strategy: IPStrategy) throws {
        let config = try DNSConfiguration.parse(text: """
            [server.dns]
            type = "cloudflare"
            [server.dns.options]
            ip_strategy = "\(strategy.rawValue)"
            """, file: "vrules.toml")
        #expect(config.root.options.ipStrategy == strategy)
        let set = DNSResolverSet(configuration: config)
        #expect(set.resolver(forDomain: nil).ipStrategy == strategy)
    }

    @Test("presets: google and cloudflare name their four servers; defaults are vSMTP's")
    func presets() throws {
        let google = try DNSConfiguration.parse(text: "[server.dns]\ntype = \"google\"\n", file: "vrules.toml")
        #expect(google.root.servers.map(\.description) == ["8.8.8.8:53", "8.8.4.4:53", "[2001:4860:4860::8888]:53", "[2001:4860:4860::8844]:53"])
        #expect(google.root.options == DNSResolverOptions())
        let cloudflare = try DNSConfiguration.parse(text: "[server.dns]\ntype = \"cloudflare\"\n", file: "vrules.toml")
        #expect(cloudflare.root.servers.map(\.description) == ["1.1.1.1:53", "1.0.0.1:53", "[2606:4700:4700::1111]:53", "[2606:4700:4700::1001]:53"])
    }

    @Test("system reads resolv.conf: nameservers, options as defaults, search; TOML options apply on top")
    func system() throws {
        let resolvConf = try temporaryFile("""
            # comment
            nameserver 127.0.0.53
            nameserver ::1
            nameserver fe80::1%eth0
            options timeout:3 attempts:4 rotate ndots:2
            search example.com example.net
            """, name: "resolv")
        defer { unlink(resolvConf) }
        let plain = try DNSConfiguration.parse(text: "", file: "vrules.toml", resolvConfPath: resolvConf)
        #expect(plain.root.type == .system)
        #expect(plain.root.servers.map(\.description) == ["127.0.0.53:53", "[::1]:53"])
        #expect(plain.root.options.timeout == .seconds(3))
        #expect(plain.root.options.attempts == 4)
        #expect(plain.root.options.rotate)
        #expect(plain.root.ndots == 2)
        #expect(plain.root.search == ["example.com", "example.net"])

        let overridden = try DNSConfiguration.parse(text: """
            [server.dns]
            type = "system"
            [server.dns.options]
            attempts = 1
            """, file: "vrules.toml", resolvConfPath: resolvConf)
        #expect(overridden.root.options.attempts == 1)
        #expect(overridden.root.options.timeout == .seconds(3))
    }

    @Test("resolv.conf: glibc caps, domain, and a missing file meaning a loopback server")
    func resolvConfDetails() throws {
        let conf = ResolvConf(parsing: "nameserver 10.0.0.1\noptions timeout:99 attempts:9\ndomain Example.org\n")
        #expect(conf.timeoutSeconds == 30 && conf.attempts == 5)
        #expect(conf.search == ["example.org"])
        let missing = try ResolvConf.load(path: "/nonexistent/resolv.conf")
        #expect(missing.nameservers.map(\.description) == ["127.0.0.1:53"])
    }

    @Test("virtual domains override the root and inherit what they do not set")
    func virtualDomains() throws {
        let config = try DNSConfiguration.parse(text: """
            [server.dns]
            type = "custom"
            servers = ["127.0.0.1:5300"]
            [server.dns.options]
            cache_size = 100

            [server.virtual."example.com".dns]
            type = "google"

            [server.virtual."Other.Example.".dns.options]
            timeout = "1s"

            [server.virtual."nodns.example"]
            something_else = 1
            """, file: "vrules.toml")
        #expect(config.virtualDomains.keys.sorted() == ["example.com", "other.example"])
        let example = try #require(config.virtualDomains["example.com"])
        #expect(example.type == .google)
        #expect(example.options.cacheSize == 100)
        let other = try #require(config.virtualDomains["other.example"])
        #expect(other.servers == config.root.servers)
        #expect(other.options.timeout == .seconds(1))
    }

    @Test("the resolver set walks up parent domains and falls back to the root resolver")
    func resolverSet() throws {
        let config = try DNSConfiguration.parse(text: """
            [server.dns]
            type = "custom"
            servers = ["127.0.0.1:5300"]
            [server.virtual."example.com".dns]
            type = "google"
            [server.virtual."same-as-root.example".dns]
            type = "custom"
            servers = ["127.0.0.1:5300"]
            [server.virtual."also-google.example".dns]
            type = "google"
            """, file: "vrules.toml")
        let set = DNSResolverSet(configuration: config)
        #expect(set.distinctResolverCount == 2)
        #expect(set.networkResolver(forDomain: "example.com").servers == DNSConfiguration.googleServers)
        #expect(set.networkResolver(forDomain: "a.b.EXAMPLE.com.").servers == DNSConfiguration.googleServers)
        #expect(set.networkResolver(forDomain: "notexample.com") === set.root)
        #expect(set.networkResolver(forDomain: nil) === set.root)
        #expect(set.networkResolver(forDomain: "same-as-root.example") === set.root)
        #expect(set.networkResolver(forDomain: "also-google.example") === set.networkResolver(forDomain: "example.com"))
    }

    @Test("load(path:) reads a file and names it in errors")
    func loadFile() throws {
        let path = try temporaryFile("[server.dns]\ntype = \"custom\"\nservers = [\"127.0.0.1:5353\"]\n", name: "toml")
        defer { unlink(path) }
        let set = try DNSResolverSet.load(path: path)
        #expect(set.root.servers.map(\.description) == ["127.0.0.1:5353"])
        let bad = try temporaryFile("[server.dns]\ntyp = \"custom\"\n", name: "toml")
        defer { unlink(bad) }
        do {
            _ = try DNSConfiguration.load(path: bad)
            Issue.record("accepted")
        } catch {
            #expect(error.file == bad)
            #expect(error.keyPath == "server.dns.typ")
            #expect(error.suggestion == "type")
        }
        #expect(throws: DNSConfigurationError.self) { try DNSConfiguration.load(path: "/nonexistent/vrules.toml") }
    }

    @Test("errors name the file, the key path and the nearest valid spelling")
    func errors() {
        let cases: [(String, String, String?)] = [
            ("[server.dns.options]\nip_strategy = \"Ipv4ThenIpv6\"\n", "server.dns.options.ip_strategy", "Ipv4thenIpv6"),
            ("[server.dns.options]\nip_strategy = \"ipv6only\"\n", "server.dns.options.ip_strategy", "Ipv6Only"),
            ("[server.dns.options]\ntimout = \"5s\"\n", "server.dns.options.timout", "timeout"),
            ("[server.dns.options]\ntimeout = \"5sec\"\n", "server.dns.options.timeout", "5s"),
            ("[server.dns.options]\ntimeout = \"5\"\n", "server.dns.options.timeout", "5s"),
            ("[server.dns.options]\ntimeout = 1.5\n", "server.dns.options.timeout", nil),
            ("[server.dns.options]\ntimeout = \"0ms\"\n", "server.dns.options.timeout", nil),
            ("[server.dns.options]\nattempts = \"2\"\n", "server.dns.options.attempts", nil),
            ("[server.dns.options]\nattempts = -1\n", "server.dns.options.attempts", nil),
            ("[server.dns.options]\nnum_concurrent_reqs = 0\n", "server.dns.options.num_concurrent_reqs", nil),
            ("[server.dns.options]\nrotate = \"yes\"\n", "server.dns.options.rotate", nil),
            ("[server.dns.options]\npreserve_intermediate = true\n", "server.dns.options.preserve_intermediate", "preserve_intermediates"),
            ("[server.dns]\ntype = \"cloudfare\"\n", "server.dns.type", "cloudflare"),
            ("[server.dns]\ntype = \"custom\"\n", "server.dns.servers", nil),
            ("[server.dns]\ntype = \"google\"\nservers = [\"127.0.0.1\"]\n", "server.dns.servers", nil),
            ("[server.dns]\ntype = \"custom\"\nservers = [\"127.0.0.1:99999\"]\n", "server.dns.servers[0]", nil),
            ("[server.dns]\ntype = \"custom\"\nservers = [\"::1:53\", \"x\"]\n", "server.dns.servers[1]", nil),
            ("[server.dns]\noptions = 3\n", "server.dns.options", nil),
            ("[server.virtual.\"example.com\".dns]\ntype = \"gogle\"\n", "server.virtual.\"example.com\".dns.type", "google"),
            ("[server.virtual.\"example.com\".dns.options]\ncache = 3\n", "server.virtual.\"example.com\".dns.options.cache", "cache_size"),
        ]
        for (text, keyPath, suggestion) in cases {
            guard let error = parseError(text) else { continue }
            #expect(error.file == "vrules.toml")
            #expect(error.keyPath == keyPath, "\(text)")
            #expect(error.suggestion == suggestion, "\(text)")
            #expect(error.description.hasPrefix("vrules.toml: \(keyPath): "))
        }
    }

    @Test("a TOML syntax error names the file, line and column")
    func syntax() {
        let error = parseError("[server.dns\ntype = 1\n")
        #expect(error?.file.hasPrefix("vrules.toml:1:") == true)
    }

    @Test("other tables of the document are left to their own loaders")
    func otherTablesIgnored() throws {
        let config = try DNSConfiguration.parse(text: """
            [server]
            name = "mx.example.com"
            [server.smtp]
            anything = true
            [server.dns]
            type = "google"
            [app]
            dirpath = "/var"
            """, file: "vrules.toml")
        #expect(config.root.type == .google)
    }

    @Test("server addresses parse and print in both families")
    func serverAddresses() {
        #expect(DNSServerAddress(parsing: "[::1]:5300")?.description == "[::1]:5300")
        #expect(DNSServerAddress(parsing: "::1")?.description == "[::1]:53")
        #expect(DNSServerAddress(parsing: "10.0.0.1:53")?.port == 53)
        #expect(DNSServerAddress(parsing: "10.0.0.1:0") == nil)
        #expect(DNSServerAddress(parsing: "[10.0.0.1]:53") == nil)
        #expect(DNSServerAddress(parsing: "host.example:53") == nil)
    }
}
