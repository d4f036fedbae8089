-- Helpers for the default policy; modules load only from the rules directory.
local checks = {}

function checks.is_loopback(ip)
  return ip == "::1" or ip:match("^127%.") ~= nil or ip:match("^::ffff:127%.") ~= nil
end

-- An IPv4 or IPv6 address as Postfix writes a client's ("unknown" when it has none).
function checks.is_ip(text)
  return text:match("^%d+%.%d+%.%d+%.%d+$") ~= nil
    or (text:find(":", 1, true) ~= nil and text:match("^[%x:.]+$") ~= nil)
end

-- "[192.0.2.1]" or "[IPv6:2001:db8::1]"
function checks.is_address_literal(name)
  return name:match("^%[.+%]$") ~= nil
end

-- At least two labels of letters, digits and hyphens, none longer than 63.
function checks.is_domain_name(name)
  if #name == 0 or #name > 253 or not name:find("%.") then return false end
  for label in (name .. "."):gmatch("([^.]*)%.") do
    if #label == 0 or #label > 63 then return false end
    if not label:match("^[%w-]+$") or label:sub(1, 1) == "-" or label:sub(-1) == "-" then return false end
  end
  return true
end

-- dns.locate_mx(domain), or nil and the reason when no DNS name can be `domain` (an empty
-- label, one over 63 octets, an invalid IDN): that is the client's error, for a permanent
-- refusal, where the script error would defer the mail day after day. DNS trouble is raised
-- as dns.locate_mx raises it (uncaught: 451 4.4.3).
function checks.locate_mx(domain)
  local ok, route = pcall(dns.locate_mx, domain)
  if ok then return route end
  if type(route) == "table" then error(route, 0) end
  return nil, route
end

return checks
