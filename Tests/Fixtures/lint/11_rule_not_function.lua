-- expect: 5:5: error: rule 'string body': expected a function, got string [not-a-function]
local check = nil
return {
  helo = {
    rule("string body", "return accept()"),
  },
}
