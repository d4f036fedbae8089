-- expect: 9:48: error: test 'typo': expect: unknown stage 'rpct' (did you mean 'rcpt'?) [invalid-test]
-- A test file whose declarations vrules test refuses: vrules check reads it as vrules test
-- does and reports the first refusal where it points (here the misspelt stage).
return {
  tests = {
    { name = "fine", client_ip = "192.0.2.10", helo = "mail.good.example",
      expect = { connect = "next" } },
    { name = "typo", client_ip = "192.0.2.10", helo = "mail.good.example",
      mail_from = "a@good.example", expect = { rpct = "550 5.1.1" } },
  },
}
