-- The sessions of examples/sessions.sh as tests, on examples/example.zone.
-- Run: vrules test examples/tests
return {
  rules = "../../rules/main.lua",
  zone_file = "../example.zone",
  tests = {
    {
      name = "accept: a well-configured sender",
      client_ip = "192.0.2.10", helo = "mail.good.example",
      mail_from = "alice@good.example", rcpt = "bob@implicit.example",
      expect = { connect = "next", helo = "next", mail = "next", rcpt = "next", data = "next", preq = "next" },
    },
    {
      name = "reject: reverse DNS does not confirm",
      client_ip = "192.0.2.66", helo = "liar.example",
      mail_from = "mallory@good.example", rcpt = "bob@implicit.example",
      expect = { connect = "550 5.7.25", helo = "not run" },
    },
    {
      name = "defer: the sender's MX lookup times out",
      client_ip = "192.0.2.10", helo = "mail.good.example",
      mail_from = "alice@good.example", rcpt = "bob@implicit.example",
      faults = { ["good.example"] = "timeout" },
      expect = { mail = "451 4.4.3 Directory server failure, try again later" },
    },
    {
      name = "a CNAME'd recipient domain is routable",
      client_ip = "192.0.2.10", helo = "mail.good.example",
      mail_from = "alice@good.example", rcpt = "bob@alias.example",
      expect = { rcpt = "next" },
    },
  },
}
