-- D1 (TissDB): insert one ~600-byte nested document (the same as the PostgreSQL form),
-- autocommit: top-level fields named, objects and arrays as jsonb. Ids far above the
-- loaded '1'..'N', random; a rare repeat is skipped.
\set id random(1000001, 9000000000000000)
INSERT INTO products (id, name, brand, price, category, is_available, release_date, specs, tags, stock, rating, reviews) VALUES (:id::text, 'Smart Speaker 7', 'brand_07', 129.99, 'home', true, '2024-05-14T10:00:00Z', '{"weight": "850g", "dimensions": {"width_mm": 110, "height_mm": 180, "depth_mm": 110}, "bluetooth_version": 5.3, "battery_hours": 12, "color": "white", "features": ["Voice Control", "Touch Controls", "Water Resistant"]}'::jsonb, '["home", "new", "premium"]'::jsonb, 512, 4.4, '[{"id": "rev_1", "rating": 5, "comment": "Amazing sound quality!"}, {"id": "rev_2", "rating": 4, "comment": "Great value for money."}]'::jsonb) ON CONFLICT DO NOTHING;
