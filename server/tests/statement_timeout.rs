//! `statement_timeout`, end to end through the `postgres` driver against the real
//! binary: a statement that runs past the session's timeout fails with 57014 "canceling
//! statement due to statement timeout", writes nothing, fails its transaction block,
//! and leaves the connection serving; statements within it answer; the setting takes
//! PostgreSQL's values and units, shows them as PostgreSQL does, and refuses the rest
//! with 22023. Both protocols, and a prepared read that has run directly on the
//! connection's thread after proving quick (`tissdb_wire::quick_reads`) before turning
//! long. A client may set it (and the other settings TissDB acts on) when it connects:
//! by name, or as `-c name=value` in `options` (libpq's PGOPTIONS); a value SET would
//! refuse refuses the connection.

mod common;

use common::{Server, pg_client};
use postgres::NoTls;
use postgres::error::SqlState;

/// Counts more rows than any machine counts within the timeouts below (about a minute
/// on these machines), so only the timeout ends it.
const LONG_COUNT: &str = "SELECT count(*) FROM generate_series(1, 2000000000) g";

fn show(c: &mut postgres::Client) -> String {
    c.query_one("SHOW statement_timeout", &[]).unwrap().get(0)
}

fn count(c: &mut postgres::Client, table: &str) -> i64 {
    c.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

/// The error of `result`, which must be the statement timeout's.
fn assert_timed_out<T: std::fmt::Debug>(result: Result<T, postgres::Error>) {
    let e = result.expect_err("the statement ran past its timeout and answered");
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e}"));
    assert_eq!(db.code(), &SqlState::QUERY_CANCELED, "{db:?}");
    assert_eq!(db.message(), "canceling statement due to statement timeout");
}

#[test]
fn statements_past_the_timeout_fail_and_change_nothing() {
    let server = Server::start();
    let mut c = pg_client(&server);
    c.batch_execute(
        "CREATE TABLE t (id integer PRIMARY KEY, v integer); \
         INSERT INTO t SELECT g, g % 7 FROM generate_series(1, 6000) g",
    )
    .unwrap();
    assert_eq!(show(&mut c), "0");

    c.batch_execute("SET statement_timeout = 300").unwrap();
    assert_eq!(show(&mut c), "300ms");
    // Both protocols: a prepared statement and a simple query.
    assert_timed_out(c.query_one(LONG_COUNT, &[]));
    assert_timed_out(c.simple_query(LONG_COUNT));
    // A scan of a table (a join of 36 million pairs) stops too.
    assert_timed_out(c.query_one("SELECT count(*) FROM t a, t b WHERE a.v + b.v < 0", &[]));
    // A write past its deadline leaves none of its rows behind (6,000 of the pairs
    // pass, spread over the join).
    assert_timed_out(c.execute(
        "INSERT INTO t SELECT 10000 * a.id + b.id, 0 FROM t a, t b \
         WHERE (7 * a.id + b.id) % 6000 = 0",
        &[],
    ));
    assert_eq!(count(&mut c, "t"), 6000);
    // Statements within the timeout answer, on the same connection.
    let small: i64 = c
        .query_one(
            "SELECT count(*) FROM t a, t b WHERE a.id < 10 AND b.id < 10",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(small, 81);

    // In a transaction block the timed-out statement fails the block, as any error.
    c.batch_execute("BEGIN; INSERT INTO t VALUES (50000, 1)")
        .unwrap();
    assert_timed_out(c.simple_query(LONG_COUNT));
    let e = c.simple_query("SELECT 1").unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(count(&mut c, "t"), 6000);

    // Without a timeout the same statements run to their end.
    c.batch_execute("SET statement_timeout = 0").unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM generate_series(1, 2000000) g", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 2_000_000);
    // Other sessions never had one.
    let mut other = pg_client(&server);
    assert_eq!(show(&mut other), "0");
}

#[test]
fn a_prepared_read_that_proved_quick_still_times_out() {
    let server = Server::start();
    let mut c = pg_client(&server);
    c.batch_execute("SET statement_timeout = '400ms'").unwrap();
    let statement = c
        .prepare("SELECT count(*) FROM generate_series(1, $1::bigint) g")
        .unwrap();
    // Quick runs: the statement's shape now runs directly on the connection's thread.
    for n in 1..=40i64 {
        let got: i64 = c.query_one(&statement, &[&n]).unwrap().get(0);
        assert_eq!(got, n);
    }
    assert_timed_out(c.query_one(&statement, &[&2_000_000_000i64]));
    // And the connection serves the statement again, quick and long.
    let got: i64 = c.query_one(&statement, &[&7i64]).unwrap().get(0);
    assert_eq!(got, 7);
    assert_timed_out(c.query_one(&statement, &[&2_000_000_000i64]));
    let got: i64 = c.query_one(&statement, &[&100_000i64]).unwrap().get(0);
    assert_eq!(got, 100_000);
}

#[test]
fn the_setting_takes_postgresql_values_and_refuses_others() {
    let server = Server::start();
    let mut c = pg_client(&server);
    for (value, shown) in [
        ("5000", "5s"),
        ("'250ms'", "250ms"),
        ("'90s'", "90s"),
        ("'2min'", "2min"),
        ("'1h'", "1h"),
        ("'1d'", "1d"),
        ("2147483647", "2147483647ms"),
        ("'1.5s'", "1500ms"),
        ("0", "0"),
    ] {
        c.batch_execute(&format!("SET statement_timeout = {value}"))
            .unwrap_or_else(|e| panic!("SET statement_timeout = {value}: {e}"));
        assert_eq!(show(&mut c), shown, "{value}");
    }
    c.batch_execute("SET statement_timeout = '3s'").unwrap();
    for bad in [
        "-1",
        "'1.2.3s'",
        "'3 years'",
        "'soon'",
        "2147483648",
        "'25d'",
    ] {
        let e = c
            .batch_execute(&format!("SET statement_timeout = {bad}"))
            .expect_err(bad);
        assert_eq!(
            e.code(),
            Some(&SqlState::INVALID_PARAMETER_VALUE),
            "{bad}: {e}"
        );
        // The value in force stays.
        assert_eq!(show(&mut c), "3s");
    }
    c.batch_execute("RESET statement_timeout").unwrap();
    assert_eq!(show(&mut c), "0");
    c.batch_execute("SET statement_timeout = '1s'; SET statement_timeout TO DEFAULT")
        .unwrap();
    assert_eq!(show(&mut c), "0");
    // A quoted name is the setting's name; a dotted one keeps its dots.
    c.batch_execute("SET \"statement_timeout\" TO '2s'; SET app.user_id = 42")
        .unwrap();
    assert_eq!(show(&mut c), "2s");
    let user: String = c
        .query_one("SELECT current_setting('app.user_id')", &[])
        .unwrap()
        .get(0);
    assert_eq!(user, "42");
}

/// A client of `server` connecting with `options` and `application_name`.
fn connect_with(
    server: &Server,
    options: &str,
    application_name: &str,
) -> Result<postgres::Client, postgres::Error> {
    postgres::Config::new()
        .host("127.0.0.1")
        .port(server.pg_port())
        .user("tester")
        .dbname("tissdb")
        .options(options)
        .application_name(application_name)
        .connect(NoTls)
}

#[test]
fn settings_sent_at_connection_apply_and_bad_ones_refuse_it() {
    let server = Server::start();
    let mut c = connect_with(
        &server,
        "-c statement_timeout=300 --max-parallel-workers-per-gather=0",
        "nightly-report",
    )
    .unwrap();
    assert_eq!(show(&mut c), "300ms");
    let workers: String = c
        .query_one("SHOW max_parallel_workers_per_gather", &[])
        .unwrap()
        .get(0);
    assert_eq!(workers, "0");
    let name: String = c.query_one("SHOW application_name", &[]).unwrap().get(0);
    assert_eq!(name, "nightly-report");
    assert_timed_out(c.query_one(LONG_COUNT, &[]));
    // The session may change them afterwards, as any setting.
    c.batch_execute("RESET statement_timeout").unwrap();
    assert_eq!(show(&mut c), "0");

    for (options, why) in [
        ("-c statement_timeout=soon", "a value SET refuses"),
        (
            "-c max_parallel_workers_per_gather=99",
            "a value SET refuses",
        ),
        ("-x", "not -c name=value"),
        ("-c statement_timeout", "no value"),
    ] {
        let e = connect_with(&server, options, "x")
            .err()
            .unwrap_or_else(|| panic!("{options} ({why}) was accepted"));
        let db = e.as_db_error().unwrap_or_else(|| panic!("{options}: {e}"));
        assert_eq!(
            db.code(),
            &SqlState::INVALID_PARAMETER_VALUE,
            "{options}: {db:?}"
        );
        assert_eq!(db.severity(), "FATAL", "{options}");
    }
    // The server goes on serving, and a plain connection has no timeout.
    let mut plain = pg_client(&server);
    assert_eq!(show(&mut plain), "0");
    let n: i64 = plain
        .query_one("SELECT count(*) FROM generate_series(1, 10)", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 10);
}
