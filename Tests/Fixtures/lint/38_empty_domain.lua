-- expect: 15:14: warning: dns.locate_mx(ctx.mail_from.domain): the domain is "" for a bounce (MAIL FROM:<>) and the empty name is a script error, so the stage is deferred (451 4.3.0) for every one; test ctx.mail_from.address == "" first [empty-domain]
-- expect: 19:26: warning: dns.lookup(ctx.mail_from.domain): the domain is "" for a bounce (MAIL FROM:<>) and the empty name is a script error, so the stage is deferred (451 4.3.0) for every one; test ctx.mail_from.address == "" first [empty-domain]
-- expect: 38:26: warning: dns.dnsbl(ctx.mail_from.domain): the domain is "" for a bounce (MAIL FROM:<>) and the empty name is a script error, so the stage is deferred (451 4.3.0) for every one; test ctx.mail_from.address == "" first [empty-domain]
-- expect: 45:14: warning: dns.locate_mx(ctx.rcpt.domain): the domain is "" for RCPT TO:<postmaster> and the empty name is a script error, so the stage is deferred (451 4.3.0) for every one; test ctx.rcpt.domain == "" first [empty-domain]
-- expect: 51:14: warning: dns.lookup(ctx.mail_from.domain): the domain is "" for a bounce (MAIL FROM:<>) and the empty name is a script error, so the stage is deferred (451 4.3.0) for every one; test ctx.mail_from.address == "" first [empty-domain]
-- A bounce's sender domain and RCPT TO:<postmaster>'s domain are "": the DNS functions refuse
-- the empty name as an error, so a rule that asks about them without looking first defers
-- its stage every time. A test of the emptiness, or a function of the script's own given
-- ctx or the address (which may test it), silences the warning.
local function is_bounce(ctx) return ctx.mail_from.address == "" end
local function routable(domain) return domain ~= "" and dns.locate_mx(domain).kind == "mx" end
return {
  mail = {
    rule("unguarded", function(ctx)
      if dns.locate_mx(ctx.mail_from.domain).kind ~= "mx" then return reject() end
    end),
    rule("through a local", function(ctx)
      local domain = ctx.mail_from.domain
      local answer = dns.lookup(domain)
      if answer.kind == "nxdomain" then return reject() end
    end),
    rule("address tested", function(ctx)
      if ctx.mail_from.address == "" then return end
      if dns.locate_mx(ctx.mail_from.domain).kind ~= "mx" then return reject() end
    end),
    rule("length tested", function(ctx)
      local domain = ctx.mail_from.domain
      if #domain > 0 and dns.query(domain, "TXT").kind == "nodata" then return reject() end
    end),
    rule("helper", function(ctx)
      if is_bounce(ctx) then return end
      if dns.locate_mx(ctx.mail_from.domain).kind ~= "mx" then return reject() end
    end),
    rule("helper given the domain", function(ctx)
      if not routable(ctx.mail_from.domain) then return reject() end
    end),
    rule("tested after", function(ctx)
      local answer = dns.dnsbl(ctx.mail_from.domain, "dbl.example")
      if ctx.mail_from.address == "" then return end
      if answer.listed then return reject() end
    end),
  },
  rcpt = {
    rule("recipient", function(ctx)
      if dns.locate_mx(ctx.rcpt.domain).kind == "null" then return reject() end
    end),
    rule("recipient tested", function(ctx)
      if ctx.rcpt.domain ~= "" and dns.locate_mx(ctx.rcpt.domain).kind == "null" then return reject() end
    end),
    rule("sender's domain at rcpt", function(ctx)
      if dns.lookup(ctx.mail_from.domain, "AAAA").kind == "nxdomain" then return reject() end
    end),
  },
}
