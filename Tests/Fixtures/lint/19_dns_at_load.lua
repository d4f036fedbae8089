-- expect: 2:12: error: dns.locate_mx() called while the script loads: DNS is only available inside a rule or action [dns-at-load]
local mx = dns.locate_mx("example.com")
return {
  mail = {
    rule("r", function(ctx) end),
  },
}
