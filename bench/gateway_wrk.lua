-- gateway_wrk.lua - wrk script for bench/gateway_bench.sh: POST one fixed body.
-- WRK_BODY_FILE   file holding the request body (binary is fine: protobuf for the nginx path)
-- WRK_PATH        request path (default /v1/chat/completions)
-- WRK_CTYPE       content-type (default application/json)
-- WRK_AUTH        optional authorization header value
local f = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("WRK_PATH") or "/v1/chat/completions"
wrk.headers["Content-Type"] = os.getenv("WRK_CTYPE") or "application/json"
wrk.headers["Accept"] = os.getenv("WRK_ACCEPT") or "*/*"
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
for k, v in string.gmatch(os.getenv("WRK_HEADERS") or "", "([^:|]+):([^|]*)") do
  wrk.headers[k] = v
end

function request()
  return wrk.format(nil, wrk.path)
end
