-- expect: 10:29: warning: 'ctx.client.ip' is an IP address: dns.lookup asks for it as a domain name, which never exists (dns.rlookup gives an address's names, dns.iprev confirms them) [address-or-name]
-- expect: 14:14: warning: 'ctx.server.ip' is an IP address: dns.locate_mx asks for it as a domain name, which never exists (dns.rlookup gives an address's names, dns.iprev confirms them) [address-or-name]
-- expect: 23:14: warning: 'ctx.helo' holds a name, not an IP address: dns.iprev raises an error for a name, so the stage is deferred (451 4.3.0) for each one (dns.lookup gives a name's addresses) [address-or-name]
-- expect: 26:25: warning: 'ctx.client.name' holds a name, not an IP address: dns.rlookup raises an error for a name, so the stage is deferred (451 4.3.0) for each one (dns.lookup gives a name's addresses) [address-or-name]
-- An address given where the rule API takes a name asks DNS for a name that never exists; a
-- name given where it takes an address is a script error for each one.
return {
  connect = {
    rule("forward", function(ctx)
      local addresses = dns.lookup(ctx.client.ip)
      if #addresses == 0 then return reject() end
    end),
    rule("mx of the client", function(ctx)
      if dns.locate_mx(ctx.server.ip).kind == "none" then return defer() end
    end),
    rule("right", function(ctx)
      local names = dns.rlookup(ctx.client.ip)
      if dns.iprev(ctx.client.ip).status ~= "pass" and #names == 0 then return reject() end
    end),
  },
  helo = {
    rule("helo iprev", function(ctx)
      if dns.iprev(ctx.helo).status == "fail" then return reject() end
    end),
    rule("client name", function(ctx)
      local names = dns.rlookup(ctx.client.name)
      local addresses = dns.lookup(ctx.helo)
      if #names + #addresses == 0 then return reject() end
    end),
  },
}
