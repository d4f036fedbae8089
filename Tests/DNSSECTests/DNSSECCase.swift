/// One question of the DNSSEC matrix, with the status a correct validator must give it.
struct DNSSECCase: Sendable, CustomStringConvertible {
    enum Status: String, Sendable {
        case secure, insecure, bogus, indeterminate
    }

    var name: String
    var type: String
    var expected: Status
    /// What the case shows, for the printed matrix.
    var shows: String

    init(_ name: String, _ type: String, _ expected: Status, _ shows: String) {
        self.name = name
        self.type = type
        self.expected = expected
        self.shows = shows
    }

    var description: String { "\(self.name) \(self.type)" }

    /// The matrix: every zone `scripts/dnssec-zones.sh` makes, asked as a rule would ask it.
    /// NXDOMAIN under NSEC3 opt-out and wildcards proven by opt-out NSEC3 are left out on
    /// purpose: validators may legitimately differ there (delv and Unbound do); opt-out is
    /// tested through the unsigned delegation it exists for.
    static let matrix: [DNSSECCase] = [
        // RSASHA256 (8), NSEC
        .init("www.alg8.test", "A", .secure, "algorithm 8"),
        .init("www.alg8.test", "AAAA", .secure, "algorithm 8"),
        .init("alg8.test", "MX", .secure, "algorithm 8"),
        .init("alg8.test", "TXT", .secure, "algorithm 8"),
        .init("nope.alg8.test", "A", .secure, "NXDOMAIN, NSEC"),
        .init("www.alg8.test", "TXT", .secure, "NODATA, NSEC"),
        .init("chain.alg8.test", "A", .secure, "CNAME across two signed zones"),
        .init("chain.alg8.test", "TXT", .secure, "CNAME, then NODATA in the other zone"),
        // ECDSAP256SHA256 (13), NSEC3 without opt-out
        .init("www.alg13.test", "A", .secure, "algorithm 13"),
        .init("alg13.test", "MX", .secure, "algorithm 13"),
        .init("alg13.test", "TXT", .secure, "algorithm 13"),
        .init("nope.alg13.test", "A", .secure, "NXDOMAIN, NSEC3"),
        .init("www.alg13.test", "TXT", .secure, "NODATA, NSEC3"),
        .init("x.wild.alg13.test", "A", .secure, "wildcard, NSEC3"),
        .init("x.wild.alg13.test", "TXT", .secure, "wildcard NODATA, NSEC3"),
        // ED25519 (15), NSEC
        .init("www.alg15.test", "A", .secure, "algorithm 15"),
        .init("alg15.test", "MX", .secure, "algorithm 15"),
        .init("alg15.test", "TXT", .secure, "algorithm 15"),
        .init("nope.alg15.test", "A", .secure, "NXDOMAIN, NSEC"),
        .init("www.alg15.test", "TXT", .secure, "NODATA, NSEC"),
        .init("x.wild.alg15.test", "A", .secure, "wildcard, NSEC"),
        .init("x.wild.alg15.test", "MX", .secure, "wildcard NODATA, NSEC"),
        // The upper zones
        .init(".", "NS", .secure, "the private root"),
        .init("test", "SOA", .secure, "test."),
        .init("nope.test", "A", .secure, "NXDOMAIN in test."),
        // NSEC3 opt-out
        .init("www.optout.test", "A", .secure, "signed name in an opt-out zone"),
        .init("www.optout.test", "TXT", .secure, "NODATA matched exactly in an opt-out zone"),
        .init("www.unsigned.optout.test", "A", .insecure, "unsigned delegation under opt-out"),
        .init("unsigned.optout.test", "MX", .insecure, "unsigned delegation under opt-out"),
        // Insecure delegations
        .init("www.insecure.test", "A", .insecure, "delegation without DS"),
        .init("insecure.test", "MX", .insecure, "delegation without DS"),
        .init("nope.insecure.test", "A", .insecure, "NXDOMAIN below a delegation without DS"),
        .init("www.unknownalg.test", "A", .insecure, "DS of algorithm 253 only"),
        .init("www.unknowndigest.test", "A", .insecure, "DS of digest type 253 only"),
        // Broken zones
        .init("www.expired.test", "A", .bogus, "signatures expired in 2020"),
        .init("expired.test", "MX", .bogus, "signatures expired in 2020"),
        .init("www.future.test", "A", .bogus, "signatures valid from 2040"),
        .init("www.dsmismatch.test", "A", .bogus, "DS matching no key"),
        .init("www.wrongkey.test", "A", .bogus, "signed by a key outside the DNSKEY set"),
        .init("mail.wrongkey.test", "A", .secure, "the rest of that zone is fine"),
        .init("www.missingsig.test", "A", .bogus, "RRSIG removed"),
        .init("nope.nsecmissing.test", "A", .bogus, "NXDOMAIN without NSEC"),
        .init("www.nsecmissing.test", "TXT", .bogus, "NODATA without NSEC"),
        .init("nope.nsec3missing.test", "A", .bogus, "NXDOMAIN without the closest encloser's NSEC3"),
        .init("www.nsec3missing.test", "TXT", .bogus, "NODATA without its NSEC3"),
        .init("www.nsecgone.test", "TXT", .bogus, "NODATA whose NSEC lists the type"),
        .init("gone.nsecgone.test", "A", .bogus, "denial whose NSEC proves the name"),
        .init("www.nsec3gone.test", "TXT", .bogus, "NODATA whose NSEC3 lists the type"),
        .init("gone.nsec3gone.test", "A", .bogus, "NXDOMAIN whose NSEC3 matches the name"),
        .init("tobogus.alg15.test", "A", .bogus, "secure CNAME into an expired zone"),
    ]
}
