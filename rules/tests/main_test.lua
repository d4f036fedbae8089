-- Tests for the default policy (rules/main.lua). Run: vrules test
return {
  rules = "../main.lua",
  zone = [[
$ORIGIN test.
$TTL 300
@              SOA ns.test. hostmaster.test. 1 3600 600 86400 300
mail.good      A     192.0.2.10
mail.good      AAAA  2001:db8::10
good           MX 10 mail.good
implicit       A     192.0.2.20
nullmx         MX 0  .
liar           A     192.0.2.99
$ORIGIN 2.0.192.in-addr.arpa.
10             PTR   mail.good.test.
66             PTR   liar.test.
67             PTR   ghost.test.
$ORIGIN 0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.
0.1            PTR   mail.good.test.
]],
  tests = {
    {
      name = "a client with confirmed reverse DNS and a routable sender is accepted",
      client_ip = "192.0.2.10", helo = "mail.good.test",
      mail_from = "alice@good.test", rcpt = "bob@implicit.test",
      expect = { connect = "next", helo = "next", mail = "next", rcpt = "250 2.1.5" },
      vars = { iprev = "pass" },
    },
    {
      name = "the same over IPv6",
      client_ip = "2001:db8::10", helo = "mail.good.test",
      mail_from = "alice@good.test", rcpt = "bob@implicit.test",
      expect = { connect = "next", rcpt = "next" },
    },
    {
      name = "a PTR name that does not resolve back is rejected with 550 5.7.25",
      client_ip = "192.0.2.66", helo = "liar.test", mail_from = "m@good.test", rcpt = "b@good.test",
      expect = { connect = "550 5.7.25 Reverse DNS validation failed", helo = "not run" },
      logs = { "iprev fail" },
    },
    {
      name = "a PTR name that does not exist is rejected",
      client_ip = "192.0.2.67", helo = "x.test",
      expect = { connect = "550 5.7.25" },
    },
    {
      name = "no PTR at all (permerror) is rejected",
      client_ip = "192.0.2.200", helo = "x.test",
      expect = { connect = "reject" },
      vars = { iprev = "permerror" },
    },
    {
      name = "a client whose address Postfix does not know is deferred, not judged",
      client_ip = "unknown", helo = "x.test",
      expect = { connect = "451 4.7.25 Client address unknown, try again later", helo = "not run" },
      logs = { "is not an IP address" },
    },
    {
      name = "a DNS outage during iprev defers with 451 4.4.3",
      client_ip = "192.0.2.10", helo = "mail.good.test",
      faults = { ["10.2.0.192.in-addr.arpa"] = "servfail" },
      expect = { connect = "451 4.4.3", helo = "not run" },
    },
    {
      name = "loopback is trusted even with a broken HELO and sender",
      client_ip = "127.0.0.1", helo = "x", mail_from = "a@nowhere.test", rcpt = "b@nullmx.test",
      expect = { connect = "accept", helo = "accept", mail = "accept", rcpt = "accept" },
      vars = { trusted = true },
    },
    {
      name = "HELO localhost is rejected",
      client_ip = "192.0.2.10", helo = "localhost",
      expect = { connect = "next", helo = "550 5.7.1" },
    },
    {
      name = "HELO that is not a domain name is rejected",
      client_ip = "192.0.2.10", helo = "bad_name!",
      expect = { helo = "550 5.7.1 Invalid HELO/EHLO name" },
    },
    {
      name = "in a dry run, the mail a bad HELO name would refuse carries the reverse DNS result",
      dry_run = true,
      client_ip = "192.0.2.10", helo = "localhost", mail_from = "a@good.test", rcpt = "b@good.test",
      expect = { helo = "550 5.7.1", mail = "not run" },
      headers = { "Authentication-Results: mx.vrules.test; iprev=pass policy.iprev=192.0.2.10" },
    },
    {
      name = "an address literal HELO is fine",
      client_ip = "192.0.2.10", helo = "[192.0.2.10]",
      expect = { helo = "next" },
    },
    {
      name = "a sender domain with Null MX is rejected with 550 5.7.27",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@nullmx.test", rcpt = "b@good.test",
      expect = { mail = "550 5.7.27", rcpt = "not run" },
    },
    {
      name = "in a dry run, the mail a Null MX sender would refuse carries the reverse DNS result",
      dry_run = true,
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@nullmx.test", rcpt = "b@good.test",
      expect = { mail = "550 5.7.27", rcpt = "not run" },
      headers = { "Authentication-Results: mx.vrules.test; iprev=pass policy.iprev=192.0.2.10" },
    },
    {
      name = "a sender domain that does not exist is rejected with 550 5.4.4",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@nowhere.test",
      expect = { mail = "550 5.4.4" },
    },
    {
      name = "a sender domain with only an address is routable (implicit MX)",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@implicit.test", rcpt = "b@good.test",
      expect = { mail = "next", rcpt = "next" },
    },
    {
      name = "bounces (null reverse-path) pass the sender check",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "", rcpt = "b@good.test",
      expect = { mail = "next" },
    },
    {
      name = "a sender domain no DNS name can be is refused, not deferred day after day",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@good..test", rcpt = "b@good.test",
      expect = { mail = "550 5.1.7 Sender address domain is not a valid domain name" },
      logs = { "sender domain good..test is not a domain name" },
    },
    {
      name = "an address literal sender is refused without a DNS question",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@[192.0.2.10]", rcpt = "b@good.test",
      expect = { mail = "550 5.1.7 Sender address is an address literal, not a domain" },
    },
    {
      name = "a DNS timeout on the sender's MX defers with 451 4.4.3",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@good.test", rcpt = "b@good.test",
      faults = { ["good.test"] = "timeout" },
      expect = { mail = "451 4.4.3", rcpt = "not run" },
    },
    {
      name = "a recipient domain with Null MX is refused, the others go on",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@good.test",
      rcpt = { "x@nullmx.test", "y@implicit.test" },
      expect = { rcpt = { "556 5.1.10", "next" }, data = "next" },
    },
    {
      name = "a recipient domain no DNS name can be is refused, the others go on",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@good.test",
      rcpt = { "x@bad..test", "y@[192.0.2.20]", "z@implicit.test" },
      expect = { rcpt = { "550 5.1.3", "next", "next" }, data = "next" },
    },
    {
      name = "a bounce to postmaster with no domain (RFC 5321 4.5.1) is taken",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "", rcpt = "postmaster",
      expect = { mail = "next", rcpt = "next", data = "next" },
    },
    {
      -- What only Postfix's own requests show: named in smtpd_recipient_restrictions and
      -- smtpd_data_restrictions (with its default smtpd_delay_reject = yes), the service is
      -- first asked at RCPT, so connect, helo and mail run then; a second list asks the same
      -- RCPT question again (one result, not two); each answer carries one header; the
      -- transaction's ctx.vars hold the iprev and SPF results.
      name = "Postfix's requests: a recipient asked twice, then DATA, each answer with one header",
      request = { client_address = "192.0.2.10", helo_name = "mail.good.test", instance = "7.1",
                  sender = "a@good.test" },
      requests = {
        { protocol_state = "RCPT", recipient = "b@good.test",
          answer = "PREPEND Received-SPF: none (mx.vrules.test: domain of good.test does not designate 192.0.2.10 as permitted sender) client-ip=192.0.2.10; envelope-from=\"a@good.test\"; helo=mail.good.test; receiver=mx.vrules.test; identity=mailfrom" },
        { protocol_state = "RCPT", recipient = "b@good.test",
          answer = "PREPEND Authentication-Results: mx.vrules.test; iprev=pass policy.iprev=192.0.2.10; spf=none smtp.mailfrom=a@good.test" },
        { protocol_state = "DATA", recipient_count = 1, answer = "DUNNO", vars = { iprev = "pass", spf = "none" } },
        { protocol_state = "END-OF-MESSAGE", recipient_count = 1, answer = "DUNNO" },
      },
    },
    {
      name = "slow DNS still gets an answer",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@good.test", rcpt = "b@good.test",
      delay = "20ms",
      expect = { connect = "next", mail = "next", rcpt = "next" },
    },
  },
}
