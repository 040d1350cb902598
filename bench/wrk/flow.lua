-- Full authorization-code flow, one per connection at a time (run with -c equal to -t):
-- GET authorize, following same-server redirects (ostiary's /interaction/{id} step, which a
-- logged-in user with remembered consent passes without a page), until the redirect to the
-- client carries a code; then POST token with it. An op = one access token issued.
-- Args: authorize_path token_path code_body [cookie]
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require("common")

local authorize_path, token_path, code_body, cookie
local code, waiting_token, follow = nil, false, nil

function init(args)
  authorize_path, token_path, code_body, cookie = args[1], args[2], args[3], args[4] or ""
end

function request()
  if code ~= nil then
    local body = code_body .. "&code=" .. code
    code, waiting_token = nil, true
    return wrk.format("POST", token_path,
      {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
  end
  local headers = {}
  if cookie ~= "" then headers["Cookie"] = cookie end
  local path = follow or authorize_path
  follow = nil
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  if waiting_token then
    waiting_token = false
    if status == 200 and body:find('"access_token"', 1, true) then ok = ok + 1 else bad = bad + 1 end
    return
  end
  local location = headers["location"] or headers["Location"]
  if location and location:find("/interaction/", 1, true) then
    follow = location:gsub("^https?://[^/]+", "")
    return
  end
  if location then code = location:match("[?&]code=([^&]+)") end
  if code == nil then bad = bad + 1 end
end
