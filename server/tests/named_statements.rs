//! Prepared statements of SQL (`PREPARE`, `EXECUTE`, `DEALLOCATE`,
//! `pg_prepared_statements`) end to end, through the `postgres` client against the real
//! binary, over the simple protocol and the extended one:
//!
//! * a prepared INSERT, SELECT, UPDATE ... RETURNING and DELETE run with their
//!   arguments cast to the declared or inferred parameter types, answer with the inner
//!   statement's rows and command tag, and keep their plan across executions;
//! * `EXECUTE name($1)` over the extended protocol gives `$1` the statement's
//!   parameter type;
//! * statements are the session's own, outlive a rolled back transaction, and go with
//!   `DEALLOCATE name`, `DEALLOCATE ALL` and `DISCARD ALL`;
//! * `pg_prepared_statements` lists them with their text and parameter types;
//! * bad input fails with PostgreSQL's SQLSTATE and stores nothing: a name prepared
//!   twice (42P05), an unknown name (26000), the wrong number of arguments (42601), an
//!   argument that does not read as its type (22P02), a statement PREPARE does not take
//!   (42601), more statements than a session may hold (54000); the session serves on.

mod common;

use common::{Server, pg_client};
use postgres::SimpleQueryMessage;

/// The SQLSTATE of a failed statement.
fn code(e: &postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| panic!("no SQLSTATE in {e}"))
}

/// The command tag and rows (as text) of a simple-protocol statement.
fn simple(c: &mut postgres::Client, sql: &str) -> (u64, Vec<Vec<Option<String>>>) {
    let mut rows = Vec::new();
    let mut count = None;
    for m in c.simple_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}")) {
        match m {
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            SimpleQueryMessage::CommandComplete(n) => count = Some(n),
            _ => {}
        }
    }
    (count.expect("a command tag"), rows)
}

fn fails(c: &mut postgres::Client, sql: &str, want: &str) -> String {
    match c.simple_query(sql) {
        Ok(_) => panic!("{sql}: expected SQLSTATE {want}, it succeeded"),
        Err(e) => {
            assert_eq!(code(&e), want, "{sql}: {e}");
            e.as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_default()
        }
    }
}

/// How many statements `pg_prepared_statements` lists.
fn prepared_count(c: &mut postgres::Client) -> i64 {
    c.query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .unwrap()
        .get(0)
}

fn table(c: &mut postgres::Client) -> Vec<(i32, String, f64)> {
    c.query("SELECT id, name, price FROM t ORDER BY id", &[])
        .expect("read t")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// A server whose table `t` holds one row, and a client of it.
fn with_one_row() -> (Server, postgres::Client) {
    let server = Server::start();
    let mut c = pg_client(&server);
    c.batch_execute(
        "CREATE TABLE t (id integer PRIMARY KEY, name text, price float8); \
         INSERT INTO t VALUES (1, 'one', 1.5)",
    )
    .unwrap();
    (server, c)
}

#[test]
fn prepared_statements_run_with_their_arguments() {
    let server = Server::start();
    let mut c = pg_client(&server);
    c.batch_execute("CREATE TABLE t (id integer PRIMARY KEY, name text, price float8)")
        .unwrap();

    simple(
        &mut c,
        "PREPARE ins (int, text, float8) AS INSERT INTO t VALUES ($1, $2, $3)",
    );
    assert_eq!(simple(&mut c, "EXECUTE ins(1, 'one', 1.5)").0, 1);
    // Arguments are cast to the parameter types: text to float8, an expression to int.
    assert_eq!(simple(&mut c, "EXECUTE ins(1 + 1, 'two', '2.25')").0, 1);
    assert_eq!(simple(&mut c, "EXECUTE ins(3, upper('three'), 3)").0, 1);
    assert_eq!(
        table(&mut c),
        vec![
            (1, "one".into(), 1.5),
            (2, "two".into(), 2.25),
            (3, "THREE".into(), 3.0)
        ]
    );

    // A parameter without a declared type takes the type its use gives it (float8).
    simple(
        &mut c,
        "PREPARE sel AS SELECT id, name FROM t WHERE price > $1 ORDER BY id",
    );
    let (n, rows) = simple(&mut c, "EXECUTE sel(2)");
    assert_eq!(n, 2);
    assert_eq!(
        rows,
        vec![
            vec![Some("2".into()), Some("two".into())],
            vec![Some("3".into()), Some("THREE".into())]
        ]
    );
    // Again, with its plan kept, and another argument.
    assert_eq!(simple(&mut c, "EXECUTE sel(2.5)").1.len(), 1);
    assert_eq!(simple(&mut c, "EXECUTE sel(0)").1.len(), 3);

    simple(
        &mut c,
        "PREPARE upd AS UPDATE t SET price = price * 2 WHERE id = $1 RETURNING price",
    );
    let (n, rows) = simple(&mut c, "EXECUTE upd(1)");
    assert_eq!((n, rows), (1, vec![vec![Some("3".into())]]));
    simple(&mut c, "PREPARE del AS DELETE FROM t WHERE id = $1");
    assert_eq!(simple(&mut c, "EXECUTE del(3)").0, 1);
    assert_eq!(simple(&mut c, "EXECUTE del(3)").0, 0);
    assert_eq!(
        table(&mut c),
        vec![(1, "one".into(), 3.0), (2, "two".into(), 2.25)]
    );

    // The extended protocol: EXECUTE's own parameter takes the statement's type
    // (float8 here), and the answer has the statement's columns.
    let rows = c
        .query("EXECUTE sel($1)", &[&2.5f64])
        .expect("EXECUTE sel($1)");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].columns()[1].name(), "name");
    assert_eq!(rows[0].get::<_, String>(1), "one");
    let stmt = c
        .prepare("EXECUTE ins($1, $2, 9.5)")
        .expect("prepare EXECUTE");
    assert_eq!(
        stmt.params(),
        &[postgres::types::Type::INT4, postgres::types::Type::TEXT]
    );
    assert_eq!(c.execute(&stmt, &[&4i32, &"four"]).unwrap(), 1);
    assert_eq!(table(&mut c).last(), Some(&(4, "four".to_string(), 9.5)));

    // A PREPARE inside a transaction that rolls back stays.
    c.batch_execute("BEGIN; PREPARE cnt AS SELECT count(*) FROM t; ROLLBACK")
        .unwrap();
    assert_eq!(
        simple(&mut c, "EXECUTE cnt").1,
        vec![vec![Some("3".into())]]
    );

    // The catalog view lists them in name order, with their parameter types.
    let listed: Vec<(String, String, Vec<String>, bool)> = c
        .query(
            "SELECT name, statement, parameter_types, from_sql FROM pg_prepared_statements \
             ORDER BY name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let names: Vec<&str> = listed.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(names, ["cnt", "del", "ins", "sel", "upd"]);
    assert!(listed[2].1.starts_with("PREPARE ins"), "{:?}", listed[2]);
    assert!(listed[2].1.contains("INSERT INTO t"), "{:?}", listed[2]);
    assert_eq!(listed[2].2, ["integer", "text", "double precision"]);
    assert_eq!(listed[3].2, ["double precision"]);
    assert!(listed.iter().all(|l| l.3));

    // Another session has its own names.
    let mut other = pg_client(&server);
    fails(&mut other, "EXECUTE sel(1)", "26000");
    simple(&mut other, "PREPARE sel AS SELECT 1");
    assert_eq!(simple(&mut c, "EXECUTE sel(0)").1.len(), 3);

    // DEALLOCATE one, then all; DISCARD ALL too.
    assert_eq!(simple(&mut c, "DEALLOCATE sel").0, 0);
    fails(&mut c, "EXECUTE sel(1)", "26000");
    simple(&mut c, "DEALLOCATE PREPARE upd");
    fails(&mut c, "EXECUTE upd(1)", "26000");
    simple(&mut c, "DEALLOCATE ALL");
    assert_eq!(prepared_count(&mut c), 0);
    simple(&mut c, "PREPARE again AS SELECT 2");
    simple(&mut c, "DISCARD ALL");
    fails(&mut c, "EXECUTE again", "26000");
    // The name is free again.
    simple(&mut c, "PREPARE again AS SELECT 3");
    assert_eq!(
        simple(&mut c, "EXECUTE again").1,
        vec![vec![Some("3".into())]]
    );
}

#[test]
fn bad_prepared_statements_fail_with_their_sqlstate_and_store_nothing() {
    let (_server, mut c) = with_one_row();
    simple(
        &mut c,
        "PREPARE ins (int, text, float8) AS INSERT INTO t VALUES ($1, $2, $3)",
    );

    let m = fails(&mut c, "PREPARE ins AS SELECT 1", "42P05");
    assert!(m.contains("\"ins\" already exists"), "{m}");
    let m = fails(&mut c, "EXECUTE nothing(1)", "26000");
    assert!(m.contains("\"nothing\" does not exist"), "{m}");
    fails(&mut c, "DEALLOCATE nothing", "26000");
    let m = fails(&mut c, "EXECUTE ins(2, 'two')", "42601");
    assert!(m.contains("expected 3, got 2"), "{m}");
    fails(&mut c, "EXECUTE ins(2, 'two', 1, 4)", "42601");
    fails(&mut c, "EXECUTE ins('two', 'two', 1)", "22P02");
    fails(&mut c, "EXECUTE ins(2, 'two', 'cheap')", "22P02");
    // The key exists: the INSERT's own error comes through.
    fails(&mut c, "EXECUTE ins(1, 'again', 1)", "23505");
    fails(&mut c, "PREPARE ddl AS CREATE TABLE u (a int)", "42601");
    fails(&mut c, "PREPARE bad AS SELECT * FROM missing", "42P01");
    fails(&mut c, "PREPARE badtype (nosuchtype) AS SELECT $1", "42704");
    // None of them was kept or stored anything.
    let names: Vec<String> = c
        .query("SELECT name FROM pg_prepared_statements", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["ins"]);
    assert_eq!(table(&mut c), vec![(1, "one".into(), 1.5)]);

    // In a failed transaction, PREPARE and EXECUTE are refused until ROLLBACK.
    c.batch_execute("BEGIN").unwrap();
    fails(&mut c, "SELECT 1/0", "22012");
    fails(&mut c, "EXECUTE ins(5, 'five', 5)", "25P02");
    fails(&mut c, "PREPARE late AS SELECT 1", "25P02");
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(simple(&mut c, "EXECUTE ins(5, 'five', 5)").0, 1);

    // The limit: one session holds at most 10,000 statements.
    let mut batch = String::new();
    for i in 1..10_000 {
        batch.push_str(&format!("PREPARE p{i} AS SELECT {i};"));
    }
    c.batch_execute(&batch).expect("9,999 more statements");
    let m = fails(&mut c, "PREPARE one_too_many AS SELECT 0", "54000");
    assert!(m.contains("10000"), "{m}");
    assert_eq!(
        simple(&mut c, "EXECUTE p9999").1,
        vec![vec![Some("9999".into())]]
    );
    simple(&mut c, "DEALLOCATE p1");
    simple(&mut c, "PREPARE one_more AS SELECT 0");
    assert_eq!(prepared_count(&mut c), 10_000);
    assert_eq!(table(&mut c).len(), 2);
}

/// The name a statement prepared over the wire has (the client keeps it private; its
/// Debug shows it).
fn wire_name(stmt: &postgres::Statement) -> String {
    let debug = format!("{stmt:?}");
    let start = debug.find("name: \"").expect("a name in the Debug") + 7;
    let len = debug[start..].find('"').expect("a closing quote");
    debug[start..start + len].to_string()
}

/// Statements prepared over the wire share the names of SQL's: DEALLOCATE drops them
/// (as psycopg before libpq 17, and Rails, drop theirs), DEALLOCATE ALL and DISCARD ALL
/// drop them all, PREPARE refuses their names, and a statement closed over the wire is
/// gone for DEALLOCATE too.
#[test]
fn deallocate_reaches_statements_prepared_over_the_wire() {
    let (_server, mut c) = with_one_row();
    let by_id = "SELECT name FROM t WHERE id = $1";
    let stmt = c.prepare(by_id).unwrap();
    let name = wire_name(&stmt);
    assert_eq!(c.query(&stmt, &[&1i32]).unwrap().len(), 1);
    let m = fails(&mut c, &format!("PREPARE {name} AS SELECT 1"), "42P05");
    assert!(m.contains("already exists"), "{m}");
    // Not listed: the view shows statements prepared in SQL.
    assert_eq!(prepared_count(&mut c), 0);

    simple(&mut c, &format!("DEALLOCATE {name}"));
    let e = c
        .query(&stmt, &[&1i32])
        .expect_err("a deallocated statement");
    assert_eq!(code(&e), "26000", "{e}");
    fails(&mut c, &format!("DEALLOCATE {name}"), "26000");
    // The name is free for SQL now.
    simple(&mut c, &format!("PREPARE {name} AS SELECT 7"));
    assert_eq!(
        simple(&mut c, &format!("EXECUTE {name}")).1,
        vec![vec![Some("7".into())]]
    );

    // DEALLOCATE ALL, and DISCARD ALL, drop every statement, over the wire or in SQL.
    for all in ["DEALLOCATE ALL", "DISCARD ALL"] {
        let (a, b) = (c.prepare(by_id).unwrap(), c.prepare("SELECT 2").unwrap());
        simple(&mut c, "PREPARE in_sql AS SELECT 3");
        simple(&mut c, all);
        for e in [
            c.query(&a, &[&1i32]).expect_err(all),
            c.query(&b, &[]).expect_err(all),
        ] {
            assert_eq!(code(&e), "26000", "{all}: {e}");
        }
        fails(&mut c, "EXECUTE in_sql", "26000");
    }

    // A statement closed over the wire (dropped) is gone for DEALLOCATE too.
    let closed = c.prepare(by_id).unwrap();
    let closed_name = wire_name(&closed);
    drop(closed);
    fails(&mut c, &format!("DEALLOCATE {closed_name}"), "26000");
    // Statements prepared afterwards work as ever.
    let again = c.prepare(by_id).unwrap();
    assert_eq!(c.query(&again, &[&1i32]).unwrap().len(), 1);
}
