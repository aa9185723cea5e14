-- wrk: GET <path prefix><random id in 1..N>, a document by id of a loaded collection.
--   wrk -s bench/rest/get.lua http://127.0.0.1:PORT -- /docs/ 100000
-- Every thread draws its own sequence (seeded with its number). The request is one
-- concatenation of its constant head and tail around the id: wrk.format (a headers table
-- walked and string.format per line) cost wrk 1.5-2 us of CPU per request at 8
-- connections (12.8-14.4 against 11.0-11.3 us), CPU the server shares on 2 cores;
-- pgbench, on the wire side, spent 11.9-13.1 us per query in the same runs.
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_no", threads)
end

local head, tail, n, random
function init(args)
    head = "GET " .. (args[1] or "/docs/")
    tail = " HTTP/1.1\r\nHost: " .. wrk.headers["Host"] .. "\r\n\r\n"
    n = tonumber(args[2] or "1000")
    random = math.random
    math.randomseed(7919 * (thread_no or 1) + os.time())
end

function request()
    return head .. random(1, n) .. tail
end
