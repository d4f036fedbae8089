-- The rules of bench/policy/spf-run.sh: what postfix-policyd-spf-python does with
-- Mail_From_reject = Fail, TempError_Defer = True and HELO_reject = No_Check, and nothing else.
-- SPF of the MAIL FROM identity (or, for the null reverse-path, of the HELO name):
--   fail       -> 550 5.7.23 (with the domain's explanation if it has one)
--   temperror  -> 451 4.7.24
--   otherwise  -> a Received-SPF header (PREPEND, once per message) and go on
return {
  mail = {
    rule("SPF", function(ctx)
      local result = spf.check(ctx)
      if result.result == "fail" then
        return reject(result.explanation and reply(550, "5.7.23", result.explanation) or replies.spf_fail)
      end
      if result.result == "temperror" then return defer(replies.spf_temperror) end
      ctx.add_header("Received-SPF", spf.received_header(result))
    end),
  },
}
