-- expect: 4:42: error: undefined global 'acept' (did you mean 'accept'?) [undefined-global]
return {
  connect = {
    rule("trusted", function(ctx) return acept() end),
  },
}
