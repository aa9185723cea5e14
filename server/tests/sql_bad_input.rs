//! Bad SQL over the PostgreSQL wire protocol (the `postgres` crate, simple and extended
//! protocol): every bad statement gets a clear error with its SQLSTATE, and after it the
//! same connection still works, the server is alive, and the rows stored before are
//! exactly the rows stored before (count and checksum, read on a second connection).
//!
//! Tests marked `#[ignore = "product bug: ..."]` assert what PostgreSQL does where TissDB
//! does not yet; run them with `-- --ignored`.

mod common;

use postgres::error::{DbError, ErrorPosition};
use postgres::{Client, NoTls, SimpleQueryMessage};

/// Rows in table `keep`.
const KEEP_ROWS: i64 = 40;

/// The two ways a statement reaches the server.
#[derive(Clone, Copy, Debug)]
enum Protocol {
    /// One Query message.
    Simple,
    /// Parse, Bind, Describe, Execute, Sync.
    Extended,
}

const PROTOCOLS: [Protocol; 2] = [Protocol::Simple, Protocol::Extended];

/// A server with a typed table `keep` and a schemaless collection `kdocs`, a connection
/// that sends the bad statements, and the state of both tables taken at the start.
struct Fixture {
    server: common::Server,
    client: Client,
    observer: Client,
    baseline: Snapshot,
}

/// What is stored, in a form cheap to compare.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    keep_count: i64,
    keep_checksum: u64,
    docs_count: i64,
    docs_checksum: u64,
}

fn connect(server: &common::Server) -> Client {
    Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=tester dbname=tissdb connect_timeout=10",
            server.pg_port()
        ),
        NoTls,
    )
    .expect("connect to tissdb")
}

/// FNV-1a over the bytes of `text`.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The rows of a simple query as text (`None` for NULL).
fn text_rows(client: &mut Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The one value of a one-row, one-column simple query.
fn scalar(client: &mut Client, sql: &str) -> Option<String> {
    let rows = text_rows(client, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    assert_eq!(rows[0].len(), 1, "{sql}: {rows:?}");
    rows[0][0].clone()
}

/// A count and a checksum of every row of `sql`, rendered as text.
fn count_and_checksum(client: &mut Client, sql: &str) -> (i64, u64) {
    let rows = text_rows(client, sql);
    let rendered: Vec<String> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| v.as_deref().unwrap_or("\\N"))
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect();
    (rows.len() as i64, fnv1a(&rendered.join("\n")))
}

fn short(sql: &str) -> String {
    let mut end = sql.len().min(80);
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    if end < sql.len() {
        format!("{}... ({} bytes)", &sql[..end], sql.len())
    } else {
        sql.to_string()
    }
}

/// Runs `sql` through `protocol`, returning the rows as text or the error.
fn run(
    client: &mut Client,
    protocol: Protocol,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, postgres::Error> {
    match protocol {
        Protocol::Simple => Ok(client
            .simple_query(sql)?
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect()),
        Protocol::Extended => {
            // Text results for every column, whatever its type: a portal with all
            // result formats text is what `simple_query` gives, but over Parse/Bind.
            let statement = client.prepare(sql)?;
            let rows = client.query(&statement, &[])?;
            Ok(rows
                .iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| render_binary(row, i))
                        .collect::<Vec<_>>()
                })
                .collect())
        }
    }
}

/// A binary result value as text, for the types these tests select.
fn render_binary(row: &postgres::Row, i: usize) -> Option<String> {
    use postgres::types::Type;
    let ty = row.columns()[i].type_().clone();
    match ty {
        Type::INT2 => row.get::<_, Option<i16>>(i).map(|v| v.to_string()),
        Type::INT4 => row.get::<_, Option<i32>>(i).map(|v| v.to_string()),
        Type::INT8 => row.get::<_, Option<i64>>(i).map(|v| v.to_string()),
        Type::FLOAT8 => row.get::<_, Option<f64>>(i).map(|v| v.to_string()),
        Type::BOOL => row.get::<_, Option<bool>>(i).map(|v| v.to_string()),
        Type::TEXT | Type::VARCHAR => row.get::<_, Option<String>>(i),
        // PostgreSQL types an untyped literal in a select list as text; TissDB
        // describes it as unknown (reported). Both are text on the wire.
        Type::UNKNOWN => row.get::<_, Option<String>>(i),
        other => panic!("column {i} has type {other}, which these tests do not render"),
    }
}

/// The database error inside `e`; panics if the failure was not one (a lost connection).
#[track_caller]
fn db_error(e: &postgres::Error, what: &str) -> DbError {
    e.as_db_error()
        .unwrap_or_else(|| panic!("{what}: expected an error from the server, got: {e:?}"))
        .clone()
}

impl Fixture {
    fn new() -> Fixture {
        let server = common::Server::start();
        let mut client = connect(&server);
        let mut observer = connect(&server);
        client
            .batch_execute(
                "CREATE TABLE keep (id integer PRIMARY KEY, name text NOT NULL, qty integer, price float8);
                 CREATE COLLECTION kdocs;",
            )
            .expect("create keep and kdocs");
        let values: Vec<String> = (1..=KEEP_ROWS)
            .map(|i| format!("({i}, 'item-{i}', {}, {})", i * 10, i as f64 * 1.25))
            .collect();
        client
            .batch_execute(&format!(
                "INSERT INTO keep (id, name, qty, price) VALUES {}",
                values.join(", ")
            ))
            .expect("fill keep");
        client
            .batch_execute(
                r#"INSERT INTO kdocs (id, brand, price, specs) VALUES
                   ('d1', 'AudioPhonic', 199.99, '{"weight": "250g", "bluetooth_version": 5.2}'::jsonb),
                   ('d2', 'TechGear', 299.99, NULL),
                   ('d3', 'AudioPhonic', 99, '{"weight": "50g", "tags": ["a", "b"]}'::jsonb)"#,
            )
            .expect("fill kdocs");
        let baseline = Fixture::snapshot_of(&mut observer);
        assert_eq!(baseline.keep_count, KEEP_ROWS);
        assert_eq!(baseline.docs_count, 3);
        assert_eq!(
            scalar(&mut observer, "SELECT sum(qty) FROM keep").as_deref(),
            Some("8200")
        );
        Fixture {
            server,
            client,
            observer,
            baseline,
        }
    }

    fn snapshot_of(client: &mut Client) -> Snapshot {
        let (keep_count, keep_checksum) =
            count_and_checksum(client, "SELECT id, name, qty, price FROM keep ORDER BY id");
        let (docs_count, docs_checksum) =
            count_and_checksum(client, "SELECT * FROM kdocs ORDER BY id");
        assert_eq!(
            scalar(client, "SELECT count(*) FROM keep").as_deref(),
            Some(keep_count.to_string().as_str()),
            "count(*) disagrees with the rows"
        );
        Snapshot {
            keep_count,
            keep_checksum,
            docs_count,
            docs_checksum,
        }
    }

    /// After a bad statement: the same connection answers `SELECT 1`, the server process
    /// is alive, and both tables hold exactly their rows.
    #[track_caller]
    fn assert_unharmed(&mut self, what: &str) {
        assert!(
            self.server.is_running(),
            "after {what}: the server exited; stderr:\n{}",
            self.server.stderr()
        );
        let one = text_rows(&mut self.client, "SELECT 1");
        assert_eq!(
            one,
            vec![vec![Some("1".to_string())]],
            "after {what}: the connection no longer answers SELECT 1"
        );
        let now = Fixture::snapshot_of(&mut self.observer);
        assert_eq!(now, self.baseline, "after {what}: stored rows changed");
    }

    /// Runs `sql` through `protocol`, asserts it fails with `code`, checks that nothing
    /// was harmed, and returns the error.
    #[track_caller]
    fn reject(&mut self, protocol: Protocol, sql: &str, code: &str) -> DbError {
        let what = format!("{protocol:?} {}", short(sql));
        let e = match run(&mut self.client, protocol, sql) {
            Ok(rows) => panic!("{what}: expected SQLSTATE {code}, got rows {rows:?}"),
            Err(e) => db_error(&e, &what),
        };
        assert_eq!(e.code().code(), code, "{what}: {e:?}");
        assert!(!e.message().is_empty(), "{what}: empty message");
        assert_eq!(e.severity(), "ERROR", "{what}");
        self.assert_unharmed(&what);
        e
    }

    /// `reject` through both protocols; returns the error of the simple protocol.
    #[track_caller]
    fn reject_both(&mut self, sql: &str, code: &str) -> DbError {
        let simple = self.reject(Protocol::Simple, sql, code);
        let extended = self.reject(Protocol::Extended, sql, code);
        assert_eq!(
            simple.message(),
            extended.message(),
            "{}: the protocols disagree",
            short(sql)
        );
        simple
    }
}

fn original_position(e: &DbError) -> Option<u32> {
    match e.position() {
        Some(ErrorPosition::Original(p)) => Some(*p),
        Some(ErrorPosition::Internal { .. }) => panic!("internal position in {e:?}"),
        None => None,
    }
}

// ------------------------------------------------------------------------------------
// Syntax
// ------------------------------------------------------------------------------------

#[test]
fn syntax_errors_are_42601_with_the_position_postgres_reports() {
    let mut f = Fixture::new();
    // (statement, 1-based character position of the offending token, as PostgreSQL 15
    // reports it)
    let cases = [
        ("SELEC 1", 1),
        // WHER is taken as an alias of keep; the error is at qty.
        ("SELECT id FROM keep WHER qty > 1", 26),
        // Positions count characters across lines...
        ("SELECT id\nFROM keep\nWHER qty > 1", 26),
        // ...and characters, not bytes.
        ("SELECT 'éé' AS x, id FROM keep WHER qty", 37),
        ("SELECT 'abc", 8),
        ("UPDATE keep SET qty 1", 21),
        ("INSERT INTO keep (id) VALUES (1,)", 33),
    ];
    for (sql, position) in cases {
        for protocol in PROTOCOLS {
            let e = f.reject(protocol, sql, "42601");
            assert_eq!(
                original_position(&e),
                Some(position),
                "{protocol:?} {sql:?}: {e:?}"
            );
        }
    }
}

#[test]
fn syntax_error_at_end_of_input_has_a_position() {
    let mut f = Fixture::new();
    // PostgreSQL: `syntax error at end of input`, position 11 (just past the text).
    for protocol in PROTOCOLS {
        let e = f.reject(protocol, "SELECT 1 +", "42601");
        assert_eq!(original_position(&e), Some(11), "{protocol:?}: {e:?}");
    }
}

#[test]
fn unterminated_and_odd_text() {
    let mut f = Fixture::new();
    f.reject_both("SELECT 'abc", "42601");
    f.reject_both("SELECT \"abc FROM keep", "42601");
    f.reject_both("SELECT id FROM keep WHERE name = 'item-1", "42601");
    f.reject_both("SELECT $$abc", "42601");
    f.reject_both("/* never closed SELECT 1", "42601");
    // A byte order mark is text like any other inside a literal...
    for protocol in PROTOCOLS {
        let rows = run(
            &mut f.client,
            protocol,
            "SELECT '\u{feff}' AS bom, length('\u{feff}') AS n",
        )
        .unwrap_or_else(|e| panic!("{protocol:?} BOM literal: {e:?}"));
        assert_eq!(
            rows,
            vec![vec![Some("\u{feff}".to_string()), Some("1".to_string())]],
            "{protocol:?}"
        );
        f.assert_unharmed("BOM literal");
    }
    // ...and before the statement it is not whitespace (PostgreSQL: syntax error).
    f.reject_both("\u{feff}SELECT 1", "42601");
    // Characters that are easy to get wrong: zero-width, right-to-left override,
    // combining marks, astral plane.
    let odd = "a\u{200b}b\u{202e}c\u{0301}🦀";
    for protocol in PROTOCOLS {
        let rows = run(
            &mut f.client,
            protocol,
            &format!("SELECT '{odd}' AS \"ü\"\"x\", length('{odd}')"),
        )
        .unwrap_or_else(|e| panic!("{protocol:?}: {e:?}"));
        assert_eq!(
            rows,
            vec![vec![Some(odd.to_string()), Some("7".to_string())]],
            "{protocol:?}"
        );
    }
    let columns = f
        .client
        .prepare("SELECT 1 AS \"ü\"\"x\"")
        .expect("prepare a quoted unicode alias");
    assert_eq!(columns.columns()[0].name(), "ü\"x");
    f.assert_unharmed("odd characters");
}

// ------------------------------------------------------------------------------------
// Names, types, arithmetic
// ------------------------------------------------------------------------------------

#[test]
fn semantic_errors_keep_the_connection_and_change_nothing() {
    let mut f = Fixture::new();
    let cases = [
        ("SELECT * FROM no_such_table", "42P01"),
        ("INSERT INTO no_such_table (id) VALUES (1)", "42P01"),
        ("UPDATE no_such_table SET a = 1", "42P01"),
        ("DELETE FROM no_such_table", "42P01"),
        ("DROP TABLE no_such_table", "42P01"),
        ("ANALYZE no_such_table", "42P01"),
        ("ANALYZE keep (no_such_column)", "42703"),
        ("SELECT no_such_column FROM keep", "42703"),
        ("SELECT id FROM keep ORDER BY no_such_column", "42703"),
        ("UPDATE keep SET no_such_column = 1", "42703"),
        ("SELECT 'x'::int", "22P02"),
        ("SELECT id FROM keep WHERE qty = 'ten'", "22P02"),
        (
            "INSERT INTO keep (id, name, qty) VALUES (41, 'x', 'many')",
            "22P02",
        ),
        // The second row is bad: the first must not be stored either.
        (
            "INSERT INTO keep (id, name, qty) VALUES (41, 'ok', 1), (42, 'bad', 'x')",
            "22P02",
        ),
        ("SELECT name + 1 FROM keep", "42883"),
        // An untyped literal takes the other operand's type, as in PostgreSQL...
        ("SELECT 'a' + 1", "22P02"),
        // ...a text one does not.
        ("SELECT 'a'::text + 1", "42883"),
        ("SELECT id FROM keep WHERE name", "42804"),
        ("SELECT id FROM keep WHERE qty", "42804"),
        ("SELECT 1 / 0", "22012"),
        ("SELECT qty / (id - id) FROM keep", "22012"),
        ("SELECT 5 % 0", "22012"),
        // Fails on the 20th row of 40: the statement is atomic, no row changes.
        ("UPDATE keep SET qty = qty / (id - 20)", "22012"),
        ("DELETE FROM keep WHERE qty / (id - 20) > 0", "22012"),
        ("SELECT 9223372036854775807 + 1", "22003"),
        ("SELECT -9223372036854775807 - 2", "22003"),
        ("SELECT 9223372036854775807 * 2", "22003"),
        (
            "INSERT INTO keep (id, name, qty) VALUES (41, 'x', 99999999999)",
            "22003",
        ),
        // qty is an integer column: 400 * 10^8 does not fit, and no row changes.
        ("UPDATE keep SET qty = qty * 100000000", "22003"),
        ("SELECT 32768::smallint", "22003"),
        // Beyond numeric's 28 significant digits (PostgreSQL's numeric holds it).
        ("SELECT 1e30", "22003"),
        (
            "SELECT id FROM keep WHERE qty < 123456789012345678901234567890",
            "22003",
        ),
        (
            "INSERT INTO keep (id, name) VALUES (1, 'duplicate key')",
            "23505",
        ),
        ("INSERT INTO keep (id, qty) VALUES (41, 1)", "23502"),
        ("UPDATE keep SET name = NULL WHERE id = 3", "23502"),
        ("CREATE TABLE keep (id int PRIMARY KEY)", "42P07"),
        ("CREATE COLLECTION kdocs", "42P07"),
        ("SELECT * FROM keep JOIN kdocs ON keep.nope = 1", "42703"),
        ("SELECT * FROM keep WHERE id IN (SELECT 1, 2)", "42601"),
        ("SELECT id FROM keep JOIN kdocs ON true", "42702"),
        ("SELECT * FROM keep FOR UPDATE", "0A000"),
        (
            "SELECT * FROM keep, LATERAL (SELECT keep.nope) AS x",
            "42703",
        ),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n FROM r) SELECT count(*) FROM r",
            "54000",
        ),
        ("SELECT name, count(*) FROM keep", "42803"),
        ("SELECT sum(name) FROM keep", "42883"),
    ];
    for (sql, code) in cases {
        f.reject_both(sql, code);
    }
    // The catalog did not change either: the failed CREATE left keep as it was.
    let columns = f
        .client
        .prepare("SELECT * FROM keep")
        .expect("prepare SELECT *");
    let names: Vec<&str> = columns.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["id", "name", "qty", "price"]);
}

#[test]
fn where_must_be_boolean_in_update_and_delete_too() {
    let mut f = Fixture::new();
    // Today each of these succeeds on every row: `truth()` takes any non-boolean,
    // non-integer value (a float, a string, even 'false') as true, and only SELECT's
    // WHERE is type-checked. `DELETE FROM keep WHERE 'false'` empties the table.
    f.reject_both("SELECT count(*) FROM keep WHERE 'x'", "22P02");
    f.reject_both("UPDATE keep SET qty = 0 WHERE price", "42804");
    f.reject_both("UPDATE keep SET qty = 0 WHERE name", "42804");
    f.reject_both("DELETE FROM keep WHERE price", "42804");
    f.reject_both("DELETE FROM keep WHERE 'x'", "22P02");
    // PostgreSQL casts the untyped literal to boolean: false, so no row.
    assert_eq!(
        scalar(&mut f.client, "SELECT count(*) FROM keep WHERE 'false'").as_deref(),
        Some("0")
    );
    f.client
        .batch_execute("DELETE FROM keep WHERE 'false'")
        .expect("DELETE ... WHERE 'false'");
    f.assert_unharmed("DELETE FROM keep WHERE 'false'");
}

#[test]
fn int4_and_int2_arithmetic_overflow_is_22003() {
    let mut f = Fixture::new();
    // PostgreSQL: integer + integer is an integer, and 2^31 does not fit.
    f.reject_both("SELECT 2147483647::integer + 1", "22003");
    f.reject_both("SELECT 32767::smallint + 1::smallint", "22003");
    // qty is an integer column: 400 * 10^7 overflows before anything is stored.
    f.reject_both("SELECT qty * 10000000 FROM keep", "22003");
}

// ------------------------------------------------------------------------------------
// Limits
// ------------------------------------------------------------------------------------

#[test]
fn ten_megabyte_statement_is_54000_naming_the_limit() {
    let mut f = Fixture::new();
    let big_literal = format!("SELECT '{}' AS s", "x".repeat(10 << 20));
    let big_comment = format!("SELECT 1 -- {}\n", "y".repeat(10 << 20));
    let big_insert = format!(
        "INSERT INTO keep (id, name) VALUES (1000, '{}')",
        "z".repeat(10 << 20)
    );
    for sql in [&big_literal, &big_comment, &big_insert] {
        for protocol in PROTOCOLS {
            let e = f.reject(protocol, sql, "54000");
            assert!(
                e.message().contains("max_query_size"),
                "the message must name the limit: {}",
                e.message()
            );
        }
    }
    // Just under the limit (1 MiB by default) a statement runs.
    let under = format!("SELECT length('{}')", "w".repeat(1_000_000));
    assert_eq!(scalar(&mut f.client, &under).as_deref(), Some("1000000"));
    f.assert_unharmed("a statement just under the limit");
}

/// `(((...(1)...)))` with `depth` pairs.
fn nested_parens(depth: usize) -> String {
    format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth))
}

/// Either a 54001 error naming the complexity, or the right answer.
#[track_caller]
fn too_complex_or(f: &mut Fixture, protocol: Protocol, sql: &str, answer: &str) {
    let what = format!("{protocol:?} {}", short(sql));
    match run(&mut f.client, protocol, sql) {
        Ok(rows) => assert_eq!(
            rows,
            vec![vec![Some(answer.to_string())]],
            "{what}: a wrong answer"
        ),
        Err(e) => {
            assert!(
                f.server.is_running(),
                "{what}: the server died; stderr:\n{}",
                f.server.stderr()
            );
            let e = db_error(&e, &what);
            assert_eq!(e.code().code(), "54001", "{what}: {e:?}");
            assert!(
                e.message().contains("too complex"),
                "{what}: {}",
                e.message()
            );
        }
    }
    f.assert_unharmed(&what);
}

#[test]
fn deep_nesting_is_refused_cleanly() {
    let mut f = Fixture::new();
    for protocol in PROTOCOLS {
        // Shallow nesting runs.
        let rows = run(&mut f.client, protocol, &nested_parens(30)).expect("30 parentheses");
        assert_eq!(rows, vec![vec![Some("1".to_string())]]);
        for sql in [
            nested_parens(10_000),
            format!("SELECT {}1{}", "abs(".repeat(10_000), ")".repeat(10_000)),
            // `- - - 1`: written with spaces, `--` would start a comment.
            format!("SELECT {}1", "- ".repeat(10_000)),
            format!(
                "SELECT id FROM keep WHERE id IN ({}1{})",
                "(".repeat(10_000),
                ")".repeat(10_000)
            ),
        ] {
            let e = f.reject(protocol, &sql, "54001");
            assert!(e.message().contains("too complex"), "{}", e.message());
        }
    }
}

/// PostgreSQL itself refuses 10 000 nested NOTs or CASEs with 42601 (`memory exhausted
/// at or near "NOT"`, its parser's stack); TissDB answers 42601 too (its parser's
/// recursion limit surfaces as `Expected: end of statement, found: NOT`), and either
/// that or 54001 is a clean refusal.
#[test]
fn deep_not_and_case_nesting_is_refused_cleanly() {
    let mut f = Fixture::new();
    for protocol in PROTOCOLS {
        for sql in [
            format!("SELECT {}true", "NOT ".repeat(10_000)),
            format!(
                "SELECT {} 1 {}",
                "CASE WHEN true THEN ".repeat(5_000),
                "END ".repeat(5_000)
            ),
        ] {
            let what = format!("{protocol:?} {}", short(&sql));
            let e = run(&mut f.client, protocol, &sql).expect_err(&what);
            let e = db_error(&e, &what);
            assert!(
                matches!(e.code().code(), "42601" | "54001"),
                "{what}: {e:?}"
            );
            f.assert_unharmed(&what);
        }
        // 100 NOTs are fine.
        let rows = run(
            &mut f.client,
            protocol,
            &format!("SELECT {}true", "NOT ".repeat(100)),
        )
        .expect("100 NOTs");
        assert_eq!(rows, vec![vec![Some(render_bool(protocol, true))]]);
    }
}

/// A boolean as the protocol's text: `t` in the simple protocol, `true` as rendered
/// from a binary result.
fn render_bool(protocol: Protocol, b: bool) -> String {
    match (protocol, b) {
        (Protocol::Simple, true) => "t".into(),
        (Protocol::Simple, false) => "f".into(),
        (Protocol::Extended, b) => b.to_string(),
    }
}

#[test]
fn moderate_operator_chains_are_answered() {
    let mut f = Fixture::new();
    for protocol in PROTOCOLS {
        let chain = format!("SELECT {}1", "1+".repeat(1_000));
        too_complex_or(&mut f, protocol, &chain, "1001");
        let ands = format!(
            "SELECT count(*) FROM keep WHERE {}true",
            "qty > 0 AND ".repeat(1_000)
        );
        too_complex_or(&mut f, protocol, &ands, "40");
    }
}

#[test]
fn long_operator_chains_never_crash_the_server() {
    let mut f = Fixture::new();
    // 100 000 terms are 200 KB, far below max_query_size: either 54001 or the sum.
    for protocol in PROTOCOLS {
        let chain = format!("SELECT {}1", "1+".repeat(99_999));
        too_complex_or(&mut f, protocol, &chain, "100000");
        let ors = format!(
            "SELECT count(*) FROM keep WHERE {}false",
            "qty = 5 OR ".repeat(20_000)
        );
        too_complex_or(&mut f, protocol, &ors, "0");
        let concat = format!("SELECT length({}'a')", "'a' || ".repeat(20_000));
        too_complex_or(&mut f, protocol, &concat, "20001");
    }
}

#[test]
fn very_long_identifiers_get_a_clear_answer() {
    let mut f = Fixture::new();
    let long = "a".repeat(100);
    let huge = "b".repeat(500_000);
    // As an unknown column or table: the usual errors.
    f.reject_both(&format!("SELECT {huge} FROM keep"), "42703");
    f.reject_both(&format!("SELECT \"{huge}\" FROM keep"), "42703");
    f.reject_both(&format!("SELECT * FROM {huge}"), "42P01");
    // As a new table: refused, naming the 63-byte limit (PostgreSQL would truncate
    // the name with a NOTICE instead), and nothing is created.
    for sql in [
        format!("CREATE TABLE {long} (id int PRIMARY KEY)"),
        format!("CREATE COLLECTION {long}"),
        format!("CREATE TABLE {huge} (id int PRIMARY KEY)"),
    ] {
        let e = f.reject_both(&sql, "42602");
        assert!(e.message().contains("63"), "{}", e.message());
    }
    f.reject_both(&format!("SELECT * FROM {long}"), "42P01");
    // As an alias: the query runs.
    for protocol in PROTOCOLS {
        let rows = run(&mut f.client, protocol, &format!("SELECT 1 AS {long}"))
            .unwrap_or_else(|e| panic!("{protocol:?} long alias: {e:?}"));
        assert_eq!(rows, vec![vec![Some("1".to_string())]]);
    }
    f.assert_unharmed("long aliases");
}

// ------------------------------------------------------------------------------------
// Failed transaction blocks
// ------------------------------------------------------------------------------------

#[test]
fn an_error_inside_begin_gives_25p02_until_rollback() {
    let mut f = Fixture::new();
    // Simple protocol: a runtime error and a binding error each fail the block.
    for failing in [
        "SELECT 1 / 0",
        "SELECT * FROM no_such_table",
        "SELECT nope FROM keep",
    ] {
        f.client.batch_execute("BEGIN").expect("BEGIN");
        let e = f.client.batch_execute(failing).unwrap_err();
        assert!(
            db_error(&e, failing).code().code() != "25P02",
            "{failing} itself must fail with its own code"
        );
        for next in [
            "SELECT 1",
            "SELECT count(*) FROM keep",
            "INSERT INTO keep (id, name) VALUES (500, 'in a failed block')",
            "UPDATE keep SET qty = 0",
            "CREATE COLLECTION never_created",
        ] {
            let e = f.client.simple_query(next).unwrap_err();
            let e = db_error(&e, next);
            assert_eq!(e.code().code(), "25P02", "{next} after {failing}: {e:?}");
            assert!(
                e.message().contains("current transaction is aborted"),
                "{}",
                e.message()
            );
        }
        // Extended protocol in the same failed block.
        let e = f.client.query("SELECT 1", &[]).unwrap_err();
        assert_eq!(db_error(&e, "extended SELECT 1").code().code(), "25P02");
        f.client.batch_execute("ROLLBACK").expect("ROLLBACK");
        f.assert_unharmed(&format!("BEGIN; {failing}; ...; ROLLBACK"));
    }
    // COMMIT of a failed block ends it too (PostgreSQL answers ROLLBACK).
    f.client.batch_execute("BEGIN").expect("BEGIN");
    assert!(f.client.batch_execute("SELECT 'x'::int").is_err());
    f.client
        .batch_execute("COMMIT")
        .expect("COMMIT of a failed block");
    f.assert_unharmed("BEGIN; error; COMMIT");
    // Nothing the failed blocks tried was done.
    f.reject_both("SELECT * FROM never_created", "42P01");
    // The same through the postgres crate's transaction (extended protocol).
    {
        let mut tx = f.client.transaction().expect("BEGIN");
        let e = tx.query("SELECT qty / 0 FROM keep", &[]).unwrap_err();
        assert_eq!(db_error(&e, "division").code().code(), "22012");
        let e = tx.query("SELECT id FROM keep", &[]).unwrap_err();
        assert_eq!(db_error(&e, "after the division").code().code(), "25P02");
        let e = tx
            .execute("DELETE FROM keep WHERE id = 1", &[])
            .unwrap_err();
        assert_eq!(
            db_error(&e, "DELETE after the division").code().code(),
            "25P02"
        );
        tx.rollback().expect("ROLLBACK");
    }
    f.assert_unharmed("a failed postgres::Transaction");
    assert!(
        !text_rows(&mut f.client, "SELECT name FROM keep WHERE id = 1").is_empty(),
        "the DELETE in the failed block must not have run"
    );
}

#[test]
fn a_syntax_error_inside_begin_gives_25p02_until_rollback() {
    let mut f = Fixture::new();
    for protocol in PROTOCOLS {
        f.client.batch_execute("BEGIN").expect("BEGIN");
        let e = run(&mut f.client, protocol, "SELEC 1").unwrap_err();
        assert_eq!(db_error(&e, "SELEC 1").code().code(), "42601");
        // PostgreSQL: every error in a block fails it, a syntax error included.
        let e = run(&mut f.client, protocol, "SELECT 1").unwrap_err();
        assert_eq!(
            db_error(&e, "SELECT 1 after a syntax error").code().code(),
            "25P02",
            "{protocol:?}"
        );
        f.client.batch_execute("ROLLBACK").expect("ROLLBACK");
        f.assert_unharmed("BEGIN; SELEC 1; SELECT 1; ROLLBACK");
    }
}
