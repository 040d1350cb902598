-- A DPoP-bound tools/call: the same POST as post.lua, each request with a fresh DPoP proof
-- (proofs are single use), read from a file of pre-signed proofs, one per line; thread i of
-- n takes lines i, i+n, ... Args: path content-type body token proofs-file threads
-- [header=value ...]. An op succeeds on 200; running out of proofs counts as failures.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require("common")

local path, body, headers, proofs, next_proof = nil, nil, {}, {}, 1

function init(args)
  path, body = args[1], args[3]
  headers["Content-Type"] = args[2]
  headers["Authorization"] = "DPoP " .. args[4]
  local id, threads, n = wrk.thread:get("id"), tonumber(args[6]), 0
  for line in io.lines(args[5]) do
    if n % threads == id then table.insert(proofs, line) end
    n = n + 1
  end
  for i = 7, #args do
    local k, v = args[i]:match("^([^=]+)=(.*)$")
    headers[k] = v
  end
end

function request()
  headers["DPoP"] = proofs[next_proof] or "exhausted"
  next_proof = next_proof + 1
  return wrk.format("POST", path, headers, body)
end

function response(status, _headers, _body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end
