-- wrk: POST <path> (TissDB's /<c>/_query) with a point lookup by a random id in 1..N:
--   {"query": "SELECT * FROM <c> WHERE id = $1", "params": ["<id>"]}
--   wrk -s bench/rest/query.lua http://127.0.0.1:PORT -- /docs/_query docs 100000
-- The request is concatenated from constant pieces around the id, as in get.lua.
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_no", threads)
end

local head, body_head, body_tail, n, random
function init(args)
    local path = args[1] or "/docs/_query"
    local query = "SELECT * FROM " .. (args[2] or "docs") .. " WHERE id = $1"
    n = tonumber(args[3] or "1000")
    head = "POST " .. path .. " HTTP/1.1\r\nHost: " .. wrk.headers["Host"]
        .. "\r\nContent-Type: application/json\r\nContent-Length: "
    body_head = '{"query": "' .. query .. '", "params": ["'
    body_tail = '"]}'
    random = math.random
    math.randomseed(7919 * (thread_no or 1) + os.time())
end

function request()
    local body = body_head .. random(1, n) .. body_tail
    return head .. #body .. "\r\n\r\n" .. body
end
