-- Refresh-token grant with rotation: each connection keeps presenting the newest refresh
-- token it was given (run with -c equal to -t). An op = one refresh answered with tokens.
-- Args: token_path refresh_body rt_thread0 rt_thread1 ...
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require("common")

local token_path, refresh_body, current

function init(args)
  token_path, refresh_body = args[1], args[2]
  current = args[3 + wrk.thread:get("id")]
end

function request()
  return wrk.format("POST", token_path,
    {["Content-Type"] = "application/x-www-form-urlencoded"},
    refresh_body .. "&refresh_token=" .. current)
end

function response(status, headers, body)
  local rt = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if status == 200 and rt then
    current = rt
    ok = ok + 1
  else
    bad = bad + 1
  end
end
