-- core/tests/fuzz/bundle: the bundle the HTTP fuzz target (fuzz_http.c) serves. Its one
-- handler builds every part of the request object (params, query, headers, body,
-- req:json()) and answers them as JSON, so the fuzzer drives raw bytes all the way
-- into Lua and back out through the JSON encoder.
local function echo(req)
  local body, err = req:json()
  return 200, {
    method = req.method, path = req.path, params = req.params, query = req.query,
    query_all = req.query_all, headers = req.headers, body = req.body, id = req.id,
    json = body, json_error = err,
  }
end

return {
  name = "fuzz",
  routes = {
    { method = "GET", path = "/echo/:a", handler = echo },
    { method = "POST", path = "/echo/:a", handler = echo },
    { method = "PUT", path = "/echo/:a/:b", handler = echo },
  },
}
