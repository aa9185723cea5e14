-- rest suite, wire side of POST: insert the document post.lua POSTs (the same fields and
-- values; the id is a generated UUID v4), autocommit, its values sent as parameters as a
-- driver sends them (pgbench -M prepared binds each :variable; suite.sh defines them with
-- -D, WIRE_DOC). A statement with the values as literals is parsed once and its plan
-- keeps them decoded, which no client inserting its own documents gets.
INSERT INTO docs (name, brand, price, category, is_available, specs, tags, stock) VALUES (:name, :brand, :price, :category, :is_available, :specs::jsonb, :tags::jsonb, :stock);
