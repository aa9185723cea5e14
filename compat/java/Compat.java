// pgjdbc against a running server: DatabaseMetaData (getTables, getColumns,
// getPrimaryKeys, getIndexInfo, getImportedKeys, getExportedKeys, getSchemas), a PreparedStatement executed 8 times (pgjdbc
// switches to a named server-side statement, and binary transfer, from the 5th), batches,
// transactions, every type of DESIGN.md's table, SQLSTATEs.
// Prints one line per check; exits 1 if any failed.
//
// Usage: java -cp build:/usr/share/java/postgresql.jar Compat
// Server: COMPAT_HOST, COMPAT_PORT, COMPAT_USER, COMPAT_DBNAME (set by compat/run.sh).

import java.math.BigDecimal;
import java.sql.*;
import java.time.*;
import java.util.*;

public class Compat {
    static final String TABLE = "compat_jdbc_types";
    static final String ITEMS = "compat_jdbc_items";
    // Named so that getTables' "compat_jdbc_%" does not match it.
    static final String ORDERS = "compat_fk_jdbc_orders";
    // name, SQL type, java.sql.Types as pgjdbc reports it, PostgreSQL type name
    static final Object[][] COLUMNS = {
        {"c_bool", "boolean", Types.BIT, "bool"},
        {"c_int2", "smallint", Types.SMALLINT, "int2"},
        {"c_int4", "integer", Types.INTEGER, "int4"},
        {"c_int8", "bigint", Types.BIGINT, "int8"},
        {"c_float8", "double precision", Types.DOUBLE, "float8"},
        {"c_numeric", "numeric(12,3)", Types.NUMERIC, "numeric"},
        {"c_text", "text", Types.VARCHAR, "text"},
        {"c_varchar", "varchar(20)", Types.VARCHAR, "varchar"},
        {"c_date", "date", Types.DATE, "date"},
        {"c_timestamp", "timestamp", Types.TIMESTAMP, "timestamp"},
        {"c_timestamptz", "timestamptz", Types.TIMESTAMP, "timestamptz"},
        {"c_bytea", "bytea", Types.BINARY, "bytea"},
        {"c_uuid", "uuid", Types.OTHER, "uuid"},
        {"c_jsonb", "jsonb", Types.OTHER, "jsonb"},
    };
    static final String TEXT = "h\u00e9llo, 'w\u00f6rld' \"q\" \\ \u2603\nline 2";
    static final byte[] BYTES = {0, 1, 2, 127, (byte) 128, (byte) 255, 92, 39};
    static final UUID UUID_VALUE = UUID.fromString("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    static final String JSON = "{\"a\": [1, 2.5, \"x\", null, true], \"nested\": {\"k\": \"v\"}}";
    static final LocalDateTime TS = LocalDateTime.of(2024, 2, 29, 23, 59, 58, 123456000);
    static final OffsetDateTime TSTZ = OffsetDateTime.of(TS, ZoneOffset.UTC);

    interface Check { void run(Connection c) throws Exception; }
    static final List<Map.Entry<String, Check>> CHECKS = new ArrayList<>();
    static void check(String name, Check fn) { CHECKS.add(Map.entry(name, fn)); }

    static void expect(boolean cond, String what) { if (!cond) throw new AssertionError(what); }
    static void expectEq(Object got, Object expected, String what) {
        boolean eq = (got instanceof byte[] && expected instanceof byte[])
            ? Arrays.equals((byte[]) got, (byte[]) expected) : Objects.equals(got, expected);
        if (!eq) throw new AssertionError(what + ": got " + show(got) + ", expected " + show(expected));
    }
    static String show(Object o) {
        if (o instanceof byte[]) return Arrays.toString((byte[]) o);
        return o == null ? "null" : o + " (" + o.getClass().getSimpleName() + ")";
    }

    static String names() {
        StringBuilder sb = new StringBuilder();
        for (Object[] col : COLUMNS) sb.append(sb.length() == 0 ? "" : ", ").append(col[0]);
        return sb.toString();
    }

    static void bindAll(PreparedStatement ps, int id, boolean nulls) throws SQLException {
        ps.setInt(1, id);
        if (nulls) {
            int[] types = {Types.BOOLEAN, Types.SMALLINT, Types.INTEGER, Types.BIGINT, Types.DOUBLE, Types.NUMERIC,
                Types.VARCHAR, Types.VARCHAR, Types.DATE, Types.TIMESTAMP, Types.TIMESTAMP_WITH_TIMEZONE,
                Types.BINARY, Types.OTHER, Types.OTHER};
            for (int i = 0; i < types.length; i++) ps.setNull(i + 2, types[i]);
            return;
        }
        ps.setBoolean(2, true);
        ps.setShort(3, (short) -32768);
        ps.setInt(4, Integer.MAX_VALUE);
        ps.setLong(5, Long.MIN_VALUE);
        ps.setDouble(6, Math.PI);
        ps.setBigDecimal(7, new BigDecimal("-12345.678"));
        ps.setString(8, TEXT);
        ps.setString(9, "abc def");
        ps.setObject(10, LocalDate.of(2024, 2, 29));
        ps.setObject(11, TS);
        ps.setObject(12, TSTZ);
        ps.setBytes(13, BYTES);
        ps.setObject(14, UUID_VALUE);
        ps.setObject(15, JSON, Types.OTHER);
    }

    static void checkRow(ResultSet rs) throws SQLException {
        expectEq(rs.getBoolean("c_bool"), true, "c_bool");
        expectEq(rs.getShort("c_int2"), (short) -32768, "c_int2");
        expectEq(rs.getInt("c_int4"), Integer.MAX_VALUE, "c_int4");
        expectEq(rs.getLong("c_int8"), Long.MIN_VALUE, "c_int8");
        expectEq(rs.getDouble("c_float8"), Math.PI, "c_float8");
        expectEq(rs.getBigDecimal("c_numeric"), new BigDecimal("-12345.678"), "c_numeric");
        expectEq(rs.getString("c_text"), TEXT, "c_text");
        expectEq(rs.getString("c_varchar"), "abc def", "c_varchar");
        expectEq(rs.getObject("c_date", LocalDate.class), LocalDate.of(2024, 2, 29), "c_date");
        expectEq(rs.getObject("c_timestamp", LocalDateTime.class), TS, "c_timestamp");
        expectEq(rs.getObject("c_timestamptz", OffsetDateTime.class).toInstant(), TSTZ.toInstant(), "c_timestamptz");
        expectEq(rs.getBytes("c_bytea"), BYTES, "c_bytea");
        expectEq(rs.getObject("c_uuid"), UUID_VALUE, "c_uuid");
        String json = rs.getString("c_jsonb");
        expectEq(json == null ? null : json.replace(" ", ""), JSON.replace(" ", ""), "c_jsonb");
    }

    static void expectSqlState(Connection c, String sql, String code) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute(sql);
            throw new AssertionError(sql + " did not fail");
        } catch (SQLException e) {
            expectEq(e.getSQLState(), code, sql + " -> " + e.getMessage());
        }
        if (!c.getAutoCommit()) c.rollback();
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
            expect(rs.next() && rs.getInt(1) == 1, "SELECT 1 after the error");
        }
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + env("COMPAT_HOST", "127.0.0.1") + ":" + env("COMPAT_PORT", "5433")
            + "/" + env("COMPAT_DBNAME", "tissdb");
        Properties props = new Properties();
        props.setProperty("user", env("COMPAT_USER", "compat"));

        check("server version says PostgreSQL", c -> {
            DatabaseMetaData md = c.getMetaData();
            expectEq(md.getDatabaseProductName(), "PostgreSQL", "getDatabaseProductName");
            expect(md.getDatabaseMajorVersion() >= 9, "major version " + md.getDatabaseMajorVersion());
        });

        check("create tables with PRIMARY KEY and an index", c -> {
            try (Statement st = c.createStatement()) {
                st.execute("DROP TABLE IF EXISTS " + TABLE);
                st.execute("DROP TABLE IF EXISTS " + ORDERS);
                st.execute("DROP TABLE IF EXISTS " + ITEMS);
                StringBuilder cols = new StringBuilder();
                for (Object[] col : COLUMNS) cols.append(", ").append(col[0]).append(' ').append(col[1]);
                st.execute("CREATE TABLE " + TABLE + " (id integer PRIMARY KEY" + cols + ")");
                st.execute("CREATE TABLE " + ITEMS + " (id integer PRIMARY KEY, name varchar(40) NOT NULL, price numeric(10,2))");
                st.execute("CREATE INDEX " + ITEMS + "_name_idx ON " + ITEMS + " (name)");
                st.execute("CREATE TABLE " + ORDERS + " (id integer PRIMARY KEY, item_id integer REFERENCES " + ITEMS + " ON DELETE CASCADE, qty integer)");
            }
        });

        check("PreparedStatement round-trips every type, NULLs included", c -> {
            String marks = "?" + ", ?".repeat(COLUMNS.length);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + TABLE + " (id, " + names() + ") VALUES (" + marks + ")")) {
                bindAll(ps, 1, false);
                expectEq(ps.executeUpdate(), 1, "insert count");
                bindAll(ps, 2, true);
                expectEq(ps.executeUpdate(), 1, "insert count");
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT id, " + names() + " FROM " + TABLE + " WHERE id = ?")) {
                ps.setInt(1, 1);
                try (ResultSet rs = ps.executeQuery()) {
                    expect(rs.next(), "row 1 found");
                    checkRow(rs);
                    ResultSetMetaData md = rs.getMetaData();
                    for (int i = 0; i < COLUMNS.length; i++) {
                        expectEq(md.getColumnTypeName(i + 2), COLUMNS[i][3], "getColumnTypeName of " + COLUMNS[i][0]);
                        expectEq(md.getColumnType(i + 2), COLUMNS[i][2], "getColumnType of " + COLUMNS[i][0]);
                    }
                    expectEq(md.getTableName(2), TABLE, "ResultSetMetaData.getTableName");
                }
                ps.setInt(1, 2);
                try (ResultSet rs = ps.executeQuery()) {
                    expect(rs.next(), "row 2 found");
                    for (int i = 0; i < COLUMNS.length; i++) {
                        expectEq(rs.getObject(i + 2), null, "NULL in " + COLUMNS[i][0]);
                    }
                }
            }
        });

        check("PreparedStatement executed 8 times (named server-side statement from the 5th)", c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT id, " + names() + " FROM " + TABLE + " WHERE id = ?")) {
                for (int run = 1; run <= 8; run++) {
                    ps.setInt(1, 1);
                    try (ResultSet rs = ps.executeQuery()) {
                        expect(rs.next(), "run " + run + ": row 1 found");
                        try { checkRow(rs); } catch (AssertionError e) { throw new AssertionError("run " + run + ": " + e.getMessage()); }
                    }
                }
                expect(ps.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare(), "pgjdbc did not switch to a server-prepared statement");
            }
        });

        check("batch insert with addBatch/executeBatch", c -> {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + ITEMS + " (id, name, price) VALUES (?, ?, ?)")) {
                for (int i = 1; i <= 10; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "item " + i);
                    ps.setBigDecimal(3, new BigDecimal(i + ".50"));
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                expectEq(counts.length, 10, "batch result length");
                for (int n : counts) expect(n == 1 || n == Statement.SUCCESS_NO_INFO, "batch count " + n);
            }
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*), sum(price) FROM " + ITEMS)) {
                expect(rs.next(), "a row");
                expectEq(rs.getLong(1), 10L, "count");
                expectEq(rs.getBigDecimal(2), new BigDecimal("60.00"), "sum(price)");
            }
        });

        check("transactions: setAutoCommit(false), commit, rollback", c -> {
            c.setAutoCommit(false);
            try {
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + ITEMS + " (id, name) VALUES (?, ?)")) {
                    ps.setInt(1, 100); ps.setString(2, "committed"); ps.executeUpdate();
                    c.commit();
                    ps.setInt(1, 101); ps.setString(2, "rolled back"); ps.executeUpdate();
                    c.rollback();
                }
                try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT id FROM " + ITEMS + " WHERE id >= 100 ORDER BY id")) {
                    List<Integer> ids = new ArrayList<>();
                    while (rs.next()) ids.add(rs.getInt(1));
                    expectEq(ids, List.of(100), "ids after commit and rollback");
                }
                c.commit();
            } finally {
                c.setAutoCommit(true);
            }
        });

        check("SQLSTATE 42601 for a syntax error", c -> expectSqlState(c, "SELEC 1", "42601"));
        check("SQLSTATE 42P01 for an unknown table", c -> expectSqlState(c, "SELECT * FROM compat_no_such_table", "42P01"));
        check("SQLSTATE 23505 for a duplicate key", c -> expectSqlState(c, "INSERT INTO " + ITEMS + " (id, name) VALUES (1, 'dup')", "23505"));
        check("SQLSTATE 23505 inside a transaction, then rollback", c -> {
            c.setAutoCommit(false);
            try { expectSqlState(c, "INSERT INTO " + ITEMS + " (id, name) VALUES (1, 'dup')", "23505"); }
            finally { c.rollback(); c.setAutoCommit(true); }
        });

        check("DatabaseMetaData.getSchemas lists public", c -> {
            List<String> schemas = new ArrayList<>();
            try (ResultSet rs = c.getMetaData().getSchemas()) { while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM")); }
            expect(schemas.contains("public"), "schemas " + schemas);
        });

        check("DatabaseMetaData.getTables lists both tables", c -> {
            Map<String, String> tables = new TreeMap<>();
            try (ResultSet rs = c.getMetaData().getTables(null, "public", "compat_jdbc_%", new String[] {"TABLE"})) {
                while (rs.next()) tables.put(rs.getString("TABLE_NAME"), rs.getString("TABLE_TYPE"));
            }
            expectEq(tables, new TreeMap<>(Map.of(TABLE, "TABLE", ITEMS, "TABLE")), "getTables");
        });

        check("DatabaseMetaData.getColumns gives names, types, sizes and nullability", c -> {
            List<String> rows = new ArrayList<>();
            try (ResultSet rs = c.getMetaData().getColumns(null, "public", ITEMS, "%")) {
                while (rs.next()) {
                    rows.add(rs.getInt("ORDINAL_POSITION") + " " + rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME")
                        + " " + rs.getInt("DATA_TYPE") + " " + rs.getInt("COLUMN_SIZE") + " " + rs.getString("IS_NULLABLE"));
                }
            }
            expectEq(rows, List.of(
                "1 id int4 " + Types.INTEGER + " 10 NO",
                "2 name varchar " + Types.VARCHAR + " 40 NO",
                "3 price numeric " + Types.NUMERIC + " 10 YES"), "getColumns");
            List<String> typed = new ArrayList<>();
            try (ResultSet rs = c.getMetaData().getColumns(null, "public", TABLE, "c\\_%")) {
                while (rs.next()) typed.add(rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME"));
            }
            List<String> expected = new ArrayList<>();
            for (Object[] col : COLUMNS) expected.add(col[0] + " " + col[3]);
            expectEq(typed, expected, "getColumns of the typed table");
        });

        check("DatabaseMetaData.getPrimaryKeys", c -> {
            List<String> keys = new ArrayList<>();
            try (ResultSet rs = c.getMetaData().getPrimaryKeys(null, "public", ITEMS)) {
                while (rs.next()) keys.add(rs.getString("COLUMN_NAME") + " " + rs.getInt("KEY_SEQ"));
            }
            expectEq(keys, List.of("id 1"), "getPrimaryKeys");
        });

        check("DatabaseMetaData.getImportedKeys and getExportedKeys", c -> {
            List<String> imported = new ArrayList<>();
            try (ResultSet rs = c.getMetaData().getImportedKeys(null, "public", ORDERS)) {
                while (rs.next()) imported.add(rs.getString("PKTABLE_NAME") + "." + rs.getString("PKCOLUMN_NAME")
                    + " <- " + rs.getString("FKCOLUMN_NAME") + " " + rs.getString("FK_NAME")
                    + " seq=" + rs.getInt("KEY_SEQ") + " update=" + rs.getInt("UPDATE_RULE")
                    + " delete=" + rs.getInt("DELETE_RULE") + " pk=" + rs.getString("PK_NAME"));
            }
            // Rules: 3 = importedKeyNoAction, 0 = importedKeyCascade.
            expectEq(imported, List.of(ITEMS + ".id <- item_id " + ORDERS + "_item_id_fkey seq=1 update=3 delete=0 pk=" + ITEMS + "_pkey"), "getImportedKeys");
            List<String> exported = new ArrayList<>();
            try (ResultSet rs = c.getMetaData().getExportedKeys(null, "public", ITEMS)) {
                while (rs.next()) exported.add(rs.getString("FKTABLE_NAME") + "." + rs.getString("FKCOLUMN_NAME"));
            }
            expectEq(exported, List.of(ORDERS + ".item_id"), "getExportedKeys");
        });

        check("SQLSTATE 23503 for a reference to a missing row", c -> expectSqlState(c, "INSERT INTO " + ORDERS + " (id, item_id) VALUES (1, 424242)", "23503"));

        check("DatabaseMetaData.getIndexInfo lists the primary key and the index", c -> {
            Map<String, String> idx = new TreeMap<>();
            try (ResultSet rs = c.getMetaData().getIndexInfo(null, "public", ITEMS, false, false)) {
                while (rs.next()) idx.put(rs.getString("INDEX_NAME"), rs.getString("COLUMN_NAME") + (rs.getBoolean("NON_UNIQUE") ? " non-unique" : " unique"));
            }
            expectEq(idx.get(ITEMS + "_name_idx"), "name non-unique", "index " + ITEMS + "_name_idx in " + idx);
            expect(idx.containsValue("id unique"), "a unique index on id (the primary key) in " + idx);
        });

        int failed = 0;
        try (Connection c = DriverManager.getConnection(url, props)) {
            for (Map.Entry<String, Check> e : CHECKS) {
                try {
                    e.getValue().run(c);
                    System.out.println("ok   " + e.getKey());
                } catch (Throwable t) {
                    failed++;
                    String msg = (t instanceof AssertionError ? "" : t.getClass().getSimpleName() + ": ") + t.getMessage();
                    if (t instanceof SQLException) msg += " [SQLSTATE " + ((SQLException) t).getSQLState() + "]";
                    System.out.println("FAIL " + e.getKey() + "\n     " + String.valueOf(msg).replace("\n", "\n     "));
                    try { if (!c.getAutoCommit()) { c.rollback(); c.setAutoCommit(true); } } catch (SQLException ignored) { }
                }
            }
        }
        System.out.println((CHECKS.size() - failed) + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }

    static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? fallback : v;
    }
}
