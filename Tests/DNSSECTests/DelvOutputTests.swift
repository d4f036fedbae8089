import Testing

/// How delv 9.18's output is read: samples taken from runs against the signed hierarchy.
@Suite("delv's output, read as a status")
struct DelvOutputTests {
    @Test(arguments: [
        ("; fully validated\nwww.alg13.test.\t\t300\tIN\tA\t192.0.2.1\n", "secure"),
        (";; resolution failed: ncache nxdomain\n; negative response, fully validated\n; nope.alg8.test.\t\t300\tIN\t\\-ANY\t;-$NXDOMAIN\n", "secure"),
        (";; resolution failed: ncache nxrrset\n; negative response, fully validated\n", "secure"),
        ("; unsigned answer\nwww.insecure.test.\t300\tIN\tA\t192.0.2.1\n", "insecure"),
        (";; resolution failed: ncache nxdomain\n; negative response, unsigned answer\n", "insecure"),
        (";; validating www.unknownalg.test/A: no valid signature found\n; unsigned answer\nwww.unknownalg.test.\t300\tIN\tA\t192.0.2.1\n", "insecure"),
        (";; validating expired.test/DNSKEY: no valid signature found (DS)\n;; broken trust chain resolving 'www.expired.test/A/IN': 127.0.0.1#53\n;; resolution failed: broken trust chain\n", "bogus"),
        (";; insecurity proof failed resolving 'www.missingsig.test/A/IN': 127.0.0.1#53\n;; resolution failed: insecurity proof failed\n", "bogus"),
        // A secure CNAME into a broken zone: the failed link decides.
        (";; resolution failed: broken trust chain\n; fully validated\ntobogus.alg15.test.\t300\tIN\tCNAME\twww.expired.test.\n", "bogus"),
        (";; resolution failed: ncache nxrrset\n; fully validated\nchain.alg8.test.\t300\tIN\tCNAME\twww.alg15.test.\n", "secure"),
        (";; resolution failed: failure\n", "bogus"),
        (";; resolution failed: timed out\n", "indeterminate"),
        (";; connection refused\n", "unreadable"),
        ("", "unreadable"),
    ])
    func status(output: String, expected: String) {
        #expect(Delv.status(fromOutput: output) == expected)
    }
}
