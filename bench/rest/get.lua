-- wrk: GET <path prefix><random id in 1..N>, a document by id of a loaded collection.
--   wrk -s bench/rest/get.lua http://127.0.0.1:PORT -- /docs/ 100000
-- Every thread draws its own sequence (seeded with its number).
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_no", threads)
end

local prefix, n
function init(args)
    prefix = args[1] or "/docs/"
    n = tonumber(args[2] or "1000")
    math.randomseed(7919 * (thread_no or 1) + os.time())
end

function request()
    return wrk.format("GET", prefix .. math.random(1, n))
end
