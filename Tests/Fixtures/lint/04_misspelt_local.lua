-- expect: 6:10: error: undefined global 'domian' [undefined-global]
return {
  mail = {
    rule("sender", function(ctx)
      local domain = ctx.mail_from.domain
      if domian == "" then return reject() end
    end),
  },
}
