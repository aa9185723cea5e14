-- Grafana's PostgreSQL data source: the health check, then the query editor's table
-- list and column list. The two catalog queries are Grafana's texts as captured (see
-- shared/notes/ecosystem.md §5), with the table name in place of the example's.

-- @name health check
-- @expect-rows 1
SELECT 1;
-- @name table list (information_schema.tables, search_path parsed with string_to_array)
-- @expect-row table=compat_bi_items
SELECT
        CASE WHEN
              quote_ident(table_schema) IN (
              SELECT
                CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
              FROM
                generate_series(
                  array_lower(string_to_array(current_setting('search_path'),','),1),
                  array_upper(string_to_array(current_setting('search_path'),','),1)
                ) as i,
                string_to_array(current_setting('search_path'),',') s
              )
          THEN quote_ident(table_name)
          ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
        END AS "table"
        FROM information_schema.tables
        WHERE quote_ident(table_schema) NOT IN ('information_schema',
                                 'pg_catalog',
                                 '_timescaledb_cache',
                                 '_timescaledb_catalog',
                                 '_timescaledb_internal',
                                 '_timescaledb_config',
                                 'timescaledb_information',
                                 'timescaledb_experimental')
        ORDER BY CASE WHEN
              quote_ident(table_schema) IN (
              SELECT
                CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
              FROM
                generate_series(
                  array_lower(string_to_array(current_setting('search_path'),','),1),
                  array_upper(string_to_array(current_setting('search_path'),','),1)
                ) as i,
                string_to_array(current_setting('search_path'),',') s
              ) THEN 0 ELSE 1 END, 1;
-- @name column list of public.compat_bi_items (parse_ident)
-- @expect-rows 5
-- @expect-row column=id type=integer
-- @expect-row column=name 'type=character varying'
-- @expect-row column=price type=numeric
-- @expect-row column=created 'type=timestamp with time zone'
-- @expect-row column=tags type=jsonb
SELECT quote_ident(column_name) AS "column", data_type AS "type"
        FROM information_schema.columns
        WHERE
          CASE WHEN array_length(parse_ident('public.compat_bi_items'),1) = 2
            THEN quote_ident(table_schema) = (parse_ident('public.compat_bi_items'))[1]
              AND quote_ident(table_name) = (parse_ident('public.compat_bi_items'))[2]
            ELSE quote_ident(table_name) = 'public.compat_bi_items'
              AND
              quote_ident(table_schema) IN (
              SELECT
                CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
              FROM
                generate_series(
                  array_lower(string_to_array(current_setting('search_path'),','),1),
                  array_upper(string_to_array(current_setting('search_path'),','),1)
                ) as i,
                string_to_array(current_setting('search_path'),',') s
              )
          END;
-- @name a time-series panel query (RECONSTRUCTION of a typical macro expansion)
-- @expect-rows 2
SELECT created AS "time", price AS "value" FROM compat_bi_items
WHERE created BETWEEN '2023-12-31T00:00:00Z' AND '2024-12-31T00:00:00Z' ORDER BY 1;
