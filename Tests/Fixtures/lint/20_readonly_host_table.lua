-- expect: 2:5: error: 'dns' is read-only: cannot assign 'dns.lookup' [read-only-write]
dns.lookup = function() return {} end
return {}
