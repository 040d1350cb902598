-- A fixed POST (DCR, tools/call). Args: path content-type body [header=value ...]
-- An op succeeds on the expected status (first arg after the body: "expect=201").
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require("common")

local expect = 200

function init(args)
  wrk.method = "POST"
  wrk.path = args[1]
  wrk.headers["Content-Type"] = args[2]
  wrk.body = args[3]
  for i = 4, #args do
    local k, v = args[i]:match("^([^=]+)=(.*)$")
    if k == "expect" then expect = tonumber(v) else wrk.headers[k] = v end
  end
end

function response(status, headers, body)
  if status == expect then ok = ok + 1 else bad = bad + 1 end
end
