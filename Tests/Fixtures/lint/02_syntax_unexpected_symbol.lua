-- expect: 2:13: error: unexpected symbol near '=' [syntax-error]
local limit = = 3
return {}
