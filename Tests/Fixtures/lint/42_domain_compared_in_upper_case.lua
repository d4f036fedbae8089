-- expect: 10:24: warning: 'ctx.mail_from.domain' is lower-cased: compared with "VIP.Example" it is never equal (write "vip.example") [never-equal]
-- expect: 12:41: warning: 'ctx.mail_from.domain' is lower-cased: compared with "Bad.Example" it is never equal (write "bad.example") [never-equal]
-- expect: 17:19: warning: 'ctx.rcpt.domain' is lower-cased: compared with "Bücher.example" it is never equal (write "bücher.example") [never-equal]
-- expect: 17:53: warning: 'ctx.domain' is lower-cased: compared with "LOCAL" it is never equal (write "local") [never-equal]
-- Domains in ctx are lower-cased: compared with a constant that has an upper-case letter they
-- are never equal. Other fields keep what the client sent (ctx.helo, local parts).
return {
  mail = {
    rule("vip", function(ctx)
      if ctx.mail_from.domain == "VIP.Example" then return accept() end
      if ctx.mail_from.domain ~= "good.example" and ctx.mail_from.local_part == "Postmaster" then return next() end
      if "Bad.Example" == ctx.mail_from.domain then return reject() end
    end),
  },
  rcpt = {
    rule("domain", function(ctx)
      if ctx.rcpt.domain == "Bücher.example" or ctx.domain == "LOCAL" then return accept() end
      if ctx.helo == "MAIL.example" then return next() end
    end),
  },
}
