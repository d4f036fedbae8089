-- expect: 6:5: error: rule(name, fn): name must be a non-empty string, got an empty string [invalid-rule-name]
-- expect: 7:5: error: rule(name, fn): name must be a non-empty string, got number [invalid-rule-name]
-- expect: 8:5: error: rule(name, fn): name longer than 200 bytes (201) [invalid-rule-name]
return {
  connect = {
    rule("", function(ctx) end),
    rule(42, function(ctx) end),
    rule("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", function(ctx) end),
    action("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", function(ctx) end),
  },
}
