-- wrk: POST <path> (TissDB's /<c>/_query) with a point lookup by a random id in 1..N:
--   {"query": "SELECT * FROM <c> WHERE id = $1", "params": ["<id>"]}
--   wrk -s bench/rest/query.lua http://127.0.0.1:PORT -- /docs/_query docs 100000
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_no", threads)
end

local path, query, n
function init(args)
    path = args[1] or "/docs/_query"
    query = "SELECT * FROM " .. (args[2] or "docs") .. " WHERE id = $1"
    n = tonumber(args[3] or "1000")
    math.randomseed(7919 * (thread_no or 1) + os.time())
end

local headers = { ["Content-Type"] = "application/json" }
function request()
    local body = '{"query": "' .. query .. '", "params": ["' .. math.random(1, n) .. '"]}'
    return wrk.format("POST", path, headers, body)
end
