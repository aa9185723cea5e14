-- wrk: POST <path> with one ~300-byte nested JSON document and no id (the server
-- assigns one: TissDB a UUID v4, pouchdb-server a UUID), the same body every time.
-- No request() function: wrk then builds the request once per thread and resends it,
-- where calling into Lua and formatting it per request cost wrk 2-4 us of CPU per
-- request at 8 connections (18-19 against 20-23 us), CPU the server shares on 2 cores.
--   wrk -s bench/rest/post.lua http://127.0.0.1:PORT -- /docs
function init(args)
    wrk.method = "POST"
    wrk.path = args[1] or "/docs"
    wrk.headers["Content-Type"] = "application/json"
    wrk.body = '{"name": "Smart Watch 7", "brand": "brand_07", "price": 299.99, '
        .. '"category": "wearables", "is_available": true, "specs": {"weight": "250g", '
        .. '"dimensions": {"width_mm": 40, "height_mm": 44, "depth_mm": 11}, '
        .. '"bluetooth_version": 5.2}, "tags": ["wearables", "new", "premium"], "stock": 12}'
end
