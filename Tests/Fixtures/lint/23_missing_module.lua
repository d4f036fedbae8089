-- expect: 2:22: error: require: module 'lib.nosuch' not found (looked for Tests/Fixtures/lint/lib/nosuch.lua) [module-not-found]
local util = require "lib.nosuch"
return {}
