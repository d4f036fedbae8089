-- Tests for examples/dnsbl/dnsbl.lua. Run: vrules test examples/dnsbl/tests
-- The zone data stands in for the lists: each answer a list may give, on documentation
-- addresses (RFC 5737, RFC 3849). Each list publishes its RFC 5782 test points (127.0.0.2
-- or "test" listed, 127.0.0.1 or "invalid" not): vrules checks them alongside a zone's
-- first query, and a zone that fails them answers "error", as a real one would.
return {
  rules = "../dnsbl.lua",
  zone = [[
$ORIGIN zen.spamhaus.org.
$TTL 300
@                    SOA ns.zen.spamhaus.org. hostmaster.zen.spamhaus.org. 1 3600 600 86400 300
; RFC 5782 test point: 127.0.0.2 is listed
2.0.0.127            A 127.0.0.2
; listed (SBL) with an explanation
66.2.0.192           A 127.0.0.2
66.2.0.192           TXT "https://check.spamhaus.org/listed/?searchterm=192.0.2.66"
; listed over IPv6 (XBL), nibbles of 2001:db8::66
6.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2 A 127.0.0.4
; the query came through a public resolver: refused, not listed
77.2.0.192           A 127.255.255.254
; rate limited
78.2.0.192           A 127.255.255.255
; typo or error code
79.2.0.192           A 127.255.255.252
$ORIGIN bl.example.
@                    SOA ns.bl.example. hostmaster.bl.example. 1 3600 600 86400 300
; an expired list domain that wildcards every name to a web server
*                    A 192.0.2.1
$ORIGIN dbl.spamhaus.org.
@                    SOA ns.dbl.spamhaus.org. hostmaster.dbl.spamhaus.org. 1 3600 600 86400 300
; RFC 5782 test point of a domain list: "test" is listed
test                 A 127.0.1.2
spam.test            A 127.0.1.2
spam.test            TXT "Listed in the DBL"
]],
  tests = {
    {
      name = "a list whose test point 127.0.0.2 is not listed answers error, never listed",
      client_ip = "192.0.2.66", helo = "x.test",
      zone = [[
$ORIGIN zen.spamhaus.org.
@                    SOA ns.zen.spamhaus.org. hostmaster.zen.spamhaus.org. 1 3600 600 86400 300
66.2.0.192           A 127.0.0.2
]],
      expect = { connect = "next" },
      logs = { "dnsbl zone zen.spamhaus.org failed its health check: test point 127.0.0.2 is not listed" },
    },
    {
      name = "a listed IPv4 client is rejected with the list's text",
      client_ip = "192.0.2.66", helo = "x.test",
      expect = { connect = "550 5.7.1 Listed by zen.spamhaus.org: https://check.spamhaus.org/listed/?searchterm=192.0.2.66" },
      vars = { listed_by = "zen.spamhaus.org" },
    },
    {
      name = "a listed IPv6 client is rejected",
      client_ip = "2001:db8::66", helo = "x.test",
      expect = { connect = "550 5.7.1 Listed by zen.spamhaus.org" },
    },
    {
      name = "an IPv4-mapped IPv6 client is looked up as its IPv4 address",
      client_ip = "::ffff:192.0.2.66", helo = "x.test",
      expect = { connect = "550 5.7.1" },
    },
    {
      name = "a clean client goes on (and the wildcarding zone fails its health check: an error, not a listing)",
      client_ip = "192.0.2.10", helo = "x.test", mail_from = "a@good.test",
      expect = { connect = "next", mail = "next" },
      logs = { "dnsbl zone bl.example failed its health check: test point 127.0.0.1 answers 192.0.2.1: the zone lists everything",
               "dnsbl bl.example error" },
    },
    {
      name = "Spamhaus' public-resolver answer 127.255.255.254 is refused, not listed",
      client_ip = "192.0.2.77", helo = "x.test",
      expect = { connect = "next" },
      logs = { "dnsbl zen.spamhaus.org refused the list refused the query 127.255.255.254" },
    },
    {
      name = "the rate-limit answer 127.255.255.255 is refused",
      client_ip = "192.0.2.78", helo = "x.test",
      expect = { connect = "next" },
      logs = { "refused" },
    },
    {
      name = "the error answer 127.255.255.252 is refused",
      client_ip = "192.0.2.79", helo = "x.test",
      expect = { connect = "next" },
      logs = { "127.255.255.252" },
    },
    {
      name = "a timeout on one list: the others still answer, and nothing is rejected wrongly",
      client_ip = "192.0.2.66", helo = "x.test",
      faults = { ["66.2.0.192.bl.example"] = "timeout" },
      expect = { connect = "550 5.7.1 Listed by zen.spamhaus.org: https://check.spamhaus.org/listed/?searchterm=192.0.2.66" },
    },
    {
      name = "a DNS outage on every list goes on (a blocklist is advisory)",
      client_ip = "192.0.2.66", helo = "x.test",
      faults = { ["66.2.0.192.zen.spamhaus.org"] = "servfail", ["66.2.0.192.bl.example"] = "servfail" },
      expect = { connect = "next" },
    },
    {
      name = "a sender domain on the DBL is rejected at MAIL",
      client_ip = "192.0.2.10", helo = "x.test", mail_from = "a@spam.test",
      expect = { connect = "next", mail = "550 5.7.1 Listed by dbl.spamhaus.org: Listed in the DBL" },
    },
  },
}
