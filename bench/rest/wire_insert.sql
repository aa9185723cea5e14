-- rest suite, wire side of POST: insert the document post.lua POSTs (the same fields and
-- values; the id is a generated UUID v4), autocommit.
INSERT INTO docs (name, brand, price, category, is_available, specs, tags, stock) VALUES ('Smart Watch 7', 'brand_07', 299.99, 'wearables', true, '{"weight": "250g", "dimensions": {"width_mm": 40, "height_mm": 44, "depth_mm": 11}, "bluetooth_version": 5.2}'::jsonb, '["wearables", "new", "premium"]'::jsonb, 12);
