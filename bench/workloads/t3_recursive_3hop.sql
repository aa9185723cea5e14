-- T3: 3-hop traversal of the edges graph from a random vertex (vertices passed with -D),
-- over the index on edges (src); counts the paths of up to 3 hops (about 1 + 10 + 100 + 1000).
\set start random(1, :vertices)
WITH RECURSIVE t(node, hops) AS (SELECT :start::integer, 0 UNION ALL SELECT e.dst, t.hops + 1 FROM t JOIN edges e ON e.src = t.node WHERE t.hops < 3) SELECT count(*) FROM t;
