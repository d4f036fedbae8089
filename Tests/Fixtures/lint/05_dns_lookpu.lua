-- expect: 5:29: error: unknown field 'lookpu' of 'dns' (did you mean 'lookup'?) [unknown-member]
return {
  mail = {
    rule("sender", function(ctx)
      local addresses = dns.lookpu(ctx.mail_from.domain)
    end),
  },
}
