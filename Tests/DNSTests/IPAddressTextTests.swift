import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import DNS

/// `IPAddress.description` writes IPv4 itself (and IPv6 through `inet_ntop`): it must print
/// what `inet_ntop` prints, for every octet value in every position.
@Suite("IP address text")
struct IPAddressTextTests {
    static func platformText(_ address: IPAddress) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let family = address.isIPv4 ? AF_INET : AF_INET6
        address.bytes.withUnsafeBytes { raw in
            _ = inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count))
        }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test("IPv4: every octet value in every position, as inet_ntop prints it")
    func everyOctet() {
        for position in 0..<4 {
            for value in 0...255 {
                var bytes: [UInt8] = [192, 0, 2, 7]
                bytes[position] = UInt8(value)
                let address = IPAddress.v4(bytes)
                #expect(address.description == Self.platformText(address))
            }
        }
        #expect(IPAddress.v4([0, 0, 0, 0]).description == "0.0.0.0")
        #expect(IPAddress.v4([255, 255, 255, 255]).description == "255.255.255.255")
    }

    @Test("IPv6 and text round trips", arguments: [
        "2001:db8::1", "::1", "::", "fe80::1:2:3:4", "2001:db8:0:0:1:0:0:1", "::192.0.2.10",
        "198.51.100.25", "10.0.0.1", "1.2.3.4",
    ])
    func roundTrip(_ text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == Self.platformText(address))
        #expect(IPAddress(address.description) == address)
    }
}
