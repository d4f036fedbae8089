-- expect: 4:5: error: action 'nothing': expected a function, got nil [not-a-function]
return {
  data = {
    action("nothing"),
  },
}
