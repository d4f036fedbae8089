-- expect: 12:18: warning: dns.iprev() always returns a table, so as a condition it is always true: test .status [always-true]
-- expect: 15:14: warning: dns.dnsbl() always returns a table, so as a condition it is always true: test each entry's .status [always-true]
-- expect: 22:22: warning: dns.query() always returns a table (an empty one when nothing is found), so as a condition it is always true: test its second result (the outcome) or #records [always-true]
-- expect: 26:29: warning: dns.lookup() always returns a table (an empty one when nothing is found), so as a condition it is always true: test its second result (the outcome) or #addresses [always-true]
-- expect: 36:46: warning: dns.locate_mx() always returns a table, so as a condition it is always true: test .kind [always-true]
-- expect: 37:14: warning: spf.check() always returns a table, so as a condition it is always true: test .result [always-true]
-- The rule API's DNS and SPF functions return a table whatever they find, so testing the
-- result itself decides nothing. A named local tested before its fields are read is left alone.
return {
  connect = {
    rule("iprev", function(ctx)
      if not dns.iprev(ctx.client.ip) then return reject() end
    end),
    rule("listed", function(ctx)
      if dns.dnsbl(ctx.client.ip, "zen.example") then return reject() end
    end),
    rule("named local", function(ctx)
      local names = dns.rlookup(ctx.client.ip)
      if names and #names == 0 then return reject() end
    end),
    rule("and", function(ctx)
      local ok = dns.query("x.example", "TXT") and true
      if ok then return next() end
    end),
    rule("or default", function(ctx)
      local addresses = dns.lookup("x.example") or {}
      if #addresses == 0 then return reject() end
    end),
    rule("outcome", function(ctx)
      local addresses, outcome = dns.lookup("x.example")
      if outcome == "nxdomain" or not outcome then return reject() end
    end),
  },
  mail = {
    rule("spf", function(ctx)
      if ctx.mail_from.address ~= "" and dns.locate_mx(ctx.mail_from.domain) then return next() end
      if spf.check(ctx) then return next() end
    end),
  },
}
