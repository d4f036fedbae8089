-- vrules default policy.
--
-- What it does, stage by stage:
--   connect  Clients on loopback are trusted (the rest of the policy skips them).
--            Every other client must pass RFC 8601 iprev (forward-confirmed
--            reverse DNS):
--              pass       -> continue
--              fail       -> 550 5.7.25 (the PTR name does not resolve back)
--              permerror  -> 550 5.7.25 (no PTR record is published at all; a
--                            mail server without reverse DNS is rejected, as most
--                            large receivers do)
--              temperror  -> 451 4.4.3 (DNS is down: the client retries later)
--   helo     The HELO/EHLO name must be a domain name or an address literal, and
--            not claim to be us or localhost.
--   mail     The sender domain must be able to receive replies (RFC 5321 §5.1):
--              Null MX (RFC 7505)      -> 550 5.7.27
--              no MX and no address    -> 550 5.4.4 (unable to route)
--              no domain, an address literal, or a domain no DNS name can be
--                                      -> 550 5.1.7 (bad sender address)
--            The null reverse-path (bounces) is always allowed.
--            SPF (RFC 7208) for the sender, or for a bounce the HELO name:
--              fail       -> 550 5.7.23 with the domain's explanation if it has one
--              temperror  -> 451 4.7.24 (DNS trouble: the client retries later)
--              permerror  -> go on, logged: a broken record is the sender's mistake
--                            and says nothing about this message (RFC 7208 §8.7
--                            leaves it to local policy)
--              softfail, neutral, none, pass -> go on
--            Every message it lets through gets a Received-SPF header and an
--            Authentication-Results header with the iprev and SPF results. In a
--            dry run (vrules serve --dry-run), the mail it would have refused for
--            reverse DNS or SPF gets them too, with the result it was refused for,
--            and the mail it would have refused before SPF ran (its HELO name, its
--            sender's domain) an Authentication-Results header with the iprev result.
--   rcpt     A recipient domain that publishes Null MX cannot take mail: 556 5.1.10.
--            A recipient without a domain (RCPT TO:<postmaster>, RFC 5321 §4.5.1) or with
--            an address literal goes on; one whose domain no DNS name can be: 550 5.1.3.
--
-- A DNS lookup that fails transiently (timeout, SERVFAIL) and is not caught
-- defers the stage with 451 4.4.3, so no rule here is wrongly decided when DNS
-- is down.

local checks = require "lib.checks"

-- A refusal before SPF has run. In a dry run (vrules serve --dry-run) the message still
-- comes: it carries the one authentication result known by then, reverse DNS.
local function refuse(ctx, verdict)
  ctx.add_header("Authentication-Results", authres(ctx, { iprev = ctx.vars.iprev }))
  return verdict
end

return {
  connect = {
    action("note loopback clients", function(ctx)
      if checks.is_loopback(ctx.client.ip) then ctx.vars.trusted = true end
    end),

    rule("loopback is trusted", function(ctx)
      if ctx.vars.trusted then return accept() end
    end),

    rule("forward-confirmed reverse DNS", function(ctx)
      -- Postfix sends "unknown" when it has no address for the client (a proxy's XCLIENT
      -- ADDR=[UNAVAILABLE]): there is nothing to check, so the client waits until there is.
      if not checks.is_ip(ctx.client.ip) then
        log.warn("client address", ctx.client.ip, "is not an IP address")
        return defer(reply(451, "4.7.25", "Client address unknown, try again later"))
      end
      local result = dns.iprev(ctx.client.ip)
      ctx.vars.iprev = result.status
      if result.status == "pass" then return next() end
      -- For the message of a dry run, which this refusal does not stop (the SPF rule adds
      -- the full header for the clients that pass).
      ctx.add_header("Authentication-Results", authres(ctx, { iprev = result }))
      if result.status == "temperror" then return defer(replies.directory_failure) end
      log.info("iprev", result.status, "for", ctx.client.ip)
      return reject(replies.rdns_failed)
    end),
  },

  helo = {
    rule("HELO name is sane", function(ctx)
      if ctx.vars.trusted then return accept() end
      local name = ctx.helo or ""
      if checks.is_address_literal(name) then return next() end
      if not checks.is_domain_name(name) then
        return refuse(ctx, reject(reply(550, "5.7.1", "Invalid HELO/EHLO name")))
      end
      local lower = name:lower()
      if lower == "localhost" or lower == "localhost.localdomain"
        or (ctx.server.name and lower == ctx.server.name:lower()) then
        return refuse(ctx, reject(reply(550, "5.7.1", "HELO/EHLO name claims to be this server")))
      end
    end),
  },

  mail = {
    rule("sender domain must accept mail", function(ctx)
      if ctx.vars.trusted then return accept() end
      local domain = ctx.mail_from.domain
      if ctx.mail_from.address == "" then return next() end   -- bounces
      if domain == "" then return refuse(ctx, reject(reply(550, "5.1.7", "Sender address has no domain"))) end
      if checks.is_address_literal(domain) then
        return refuse(ctx, reject(reply(550, "5.1.7", "Sender address is an address literal, not a domain")))
      end
      local route, invalid = checks.locate_mx(domain)
      if not route then
        log.info("sender domain", domain, "is not a domain name:", invalid)
        return refuse(ctx, reject(reply(550, "5.1.7", "Sender address domain is not a valid domain name")))
      end
      if route.kind == "null" then return refuse(ctx, reject(replies.null_mx)) end
      if route.kind == "none" then return refuse(ctx, reject(replies.unable_to_route)) end
    end),

    rule("SPF", function(ctx)
      local result = spf.check(ctx)
      ctx.vars.spf = result.result
      -- Added before the verdict: a refused transaction sends no message and its headers
      -- go nowhere, but in a dry run (vrules serve --dry-run) the message still comes, and
      -- carries what the check found.
      ctx.add_header("Received-SPF", spf.received_header(result))
      ctx.add_header("Authentication-Results", authres(ctx, { iprev = ctx.vars.iprev, spf = result }))
      if result.result == "fail" then
        return reject(result.explanation and reply(550, "5.7.23", result.explanation) or replies.spf_fail)
      end
      if result.result == "temperror" then return defer(replies.spf_temperror) end
      if result.result == "permerror" then
        log.info("spf permerror for", result.domain, result.reason or "")
      end
    end),
  },

  rcpt = {
    rule("recipient domain must accept mail", function(ctx)
      if ctx.vars.trusted then return accept() end
      local domain = ctx.rcpt.domain
      if domain == "" then return next() end   -- RCPT TO:<postmaster>, this server's own
      if checks.is_address_literal(domain) then return next() end   -- routed by address, no DNS
      local route = checks.locate_mx(domain)
      if not route then return reject(reply(550, "5.1.3", "Recipient address domain is not a valid domain name")) end
      if route.kind == "null" then return reject(replies.rcpt_null_mx) end
    end),
  },
}
