-- An example DNS blocklist policy (not the default policy: which lists to use is the
-- operator's decision, and most need an agreement for commercial use).
--
-- dns.dnsbl asks every zone at once and reads each zone's answer by its documented codes:
--   listed     the subject is on the list                  -> reject with the list's text
--   clean      not listed (NXDOMAIN)                        -> go on
--   refused    the list refused to answer (Spamhaus'        -> go on, and log: the operator
--              127.255.255.x for public resolvers, rate        must fix the resolver or the
--              limits, typos; URIBL's 127.0.0.1)               query key, not reject mail
--   error      the answer is outside 127.0.0.0/8 (the list  -> go on, and log
--              wildcards every name, or is gone) or a code
--              the list does not document
--   temperror  DNS is down                                  -> go on (a list is advisory)
-- It never raises for DNS trouble.

local IP_LISTS = { "zen.spamhaus.org", "bl.example" }
local DOMAIN_LISTS = { "dbl.spamhaus.org" }

local function first_listing(results)
  for _, r in ipairs(results) do
    if r.status == "listed" then return r end
    if r.status == "refused" or r.status == "error" then
      log.warn("dnsbl", r.zone, r.status, r.reason or "", table.concat(r.codes, ","))
    end
  end
end

local function listed_reply(r)
  local text = "Listed by " .. r.zone
  if r.text then text = text .. ": " .. r.text:gsub("[%c]", " "):sub(1, 200) end
  return reply(550, "5.7.1", text)
end

return {
  connect = {
    rule("client on an IP blocklist", function(ctx)
      local listing = first_listing(dns.dnsbl(ctx.client.ip, IP_LISTS))
      if listing then
        ctx.vars.listed_by = listing.zone
        return reject(listed_reply(listing))
      end
    end),
  },
  mail = {
    rule("sender domain on a domain blocklist", function(ctx)
      if ctx.mail_from.domain == "" then return next() end
      local listing = first_listing(dns.dnsbl(ctx.mail_from.domain, DOMAIN_LISTS))
      if listing then return reject(listed_reply(listing)) end
    end),
  },
}
