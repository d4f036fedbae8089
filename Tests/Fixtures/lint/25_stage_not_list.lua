-- expect: 3:3: error: stage 'connect' must be a list of rule(...) and action(...), got string [invalid-stage]
return {
  connect = "accept everything",
}
