// The linter: see LINT brief.
