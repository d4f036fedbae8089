-- SPF in the default policy (rules/main.lua, mail stage). Run: vrules test
return {
  rules = "../main.lua",
  zone = [[
$ORIGIN test.
$TTL 300
@              SOA ns.test. hostmaster.test. 1 3600 600 86400 300
mail.good      A     192.0.2.10
good           MX 10 mail.good
good           TXT   "v=spf1 ip4:192.0.2.10 -all"
strict         MX 10 mail.good
strict         TXT   "v=spf1 -all exp=why.strict.test"
why.strict     TXT   "%{i} may not send mail for %{d}"
soft           MX 10 mail.good
soft           TXT   "v=spf1 ~all"
broken         MX 10 mail.good
broken         TXT   "v=spf1 ip4:192.0.2.300 -all"
relying        MX 10 mail.good
relying        TXT   "v=spf1 include:down.test -all"
$ORIGIN 2.0.192.in-addr.arpa.
10             PTR   mail.good.test.
]],
  tests = {
    {
      name = "a sender whose SPF passes goes on",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@good.test", rcpt = "b@good.test",
      expect = { mail = "next", rcpt = "250 2.1.5" },
      vars = { spf = "pass" },
      headers = {
        "Received-SPF: pass (mx.vrules.test: domain of good.test designates 192.0.2.10 as permitted sender) client-ip=192.0.2.10;",
        "Authentication-Results: mx.vrules.test; iprev=pass policy.iprev=192.0.2.10; spf=pass smtp.mailfrom=a@good.test",
      },
    },
    {
      name = "SPF fail is 550 5.7.23 with the domain's explanation",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@strict.test",
      expect = { mail = "550 5.7.23 192.0.2.10 may not send mail for strict.test" },
      vars = { spf = "fail" },
    },
    {
      name = "softfail goes on",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@soft.test",
      expect = { mail = "next" },
      vars = { spf = "softfail" },
    },
    {
      name = "permerror (a broken record) goes on, logged",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@broken.test",
      expect = { mail = "next" },
      vars = { spf = "permerror" },
      logs = { "spf permerror for broken.test" },
    },
    {
      name = "a DNS failure inside the SPF check (an include that times out) is 451 4.7.24",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@relying.test",
      faults = { ["down.test"] = "timeout" },
      expect = { mail = "451 4.7.24" },
      vars = { spf = "temperror" },
    },
    {
      name = "a DNS failure for the sender domain defers at its MX lookup first (451 4.4.3)",
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@good.test",
      faults = { ["good.test"] = "servfail" },
      expect = { mail = "451 4.4.3" },
    },
    {
      -- As `vrules serve --dry-run` answers it: refused at mail, answered DUNNO, the message
      -- comes with the results the rule added before it decided.
      name = "in a dry run, the mail SPF would refuse carries Received-SPF: fail and spf=fail",
      dry_run = true,
      client_ip = "192.0.2.10", helo = "mail.good.test", mail_from = "a@strict.test", rcpt = "b@good.test",
      expect = { mail = "550 5.7.23", rcpt = "not run" },
      headers = {
        "Received-SPF: fail (mx.vrules.test: domain of strict.test does not designate 192.0.2.10 as permitted sender)",
        "Authentication-Results: mx.vrules.test; iprev=pass policy.iprev=192.0.2.10; spf=fail smtp.mailfrom=a@strict.test",
      },
    },
    {
      name = "a bounce is checked with the HELO identity",
      client_ip = "192.0.2.10", helo = "strict.test", mail_from = "",
      expect = { helo = "next", mail = "550 5.7.23 192.0.2.10 may not send mail for strict.test" },
    },
  },
}
