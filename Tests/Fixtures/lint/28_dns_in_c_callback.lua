-- expect: 12:9: error: dns.lookup() inside table.sort's comparison cannot wait for DNS (called from C): call it in the rule and keep the answer [dns-in-callback]
-- expect: 15:40: error: spf.check() inside string.gsub's replacement function cannot wait for DNS (called from C): call it in the rule and keep the answer [dns-in-callback]
-- expect: 16:55: error: dns.rlookup() inside string.gsub's replacement function cannot wait for DNS (called from C): call it in the rule and keep the answer [dns-in-callback]
-- expect: 17:48: error: dns.iprev() inside an xpcall message handler cannot wait for DNS (called from C): call it in the rule and keep the answer [dns-in-callback]
return {
  rcpt = {
    rule("by preference", function(ctx)
      local hosts = { "a.example", "b.example" }
      -- The answers kept first, then sorted: fine.
      local found = dns.lookup(hosts[1])
      table.sort(hosts, function(a, b)
        dns.lookup(a)
        return a < b
      end)
      string.gsub("x", "x", function() spf.check(ctx) end)
      local text = ("x"):gsub("x", function(c) return dns.rlookup(c)[1] end)
      xpcall(function() end, function(message) dns.iprev(ctx.client.ip) return message end)
      pcall(function() dns.lookup("c.example") end)
    end),
  },
}
