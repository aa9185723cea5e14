//! serial, bigserial and identity columns end to end, against the real `tissdb` binary
//! over the PostgreSQL wire protocol:
//!
//! * an INSERT that leaves the column out gets the next value (RETURNING shows it), of
//!   the column's type; COPY without the column numbers its rows too;
//! * four connections inserting at once get distinct values, none missing;
//! * after SIGKILL the numbering resumes above every acknowledged value;
//! * a smallserial past its range fails with 22003 and stores nothing;
//! * `\d`-style catalogs show the default as `nextval('<table>_<column>_seq')`;
//! * `DEFAULT` as a VALUES item of a prepared INSERT takes the next value too.

mod common;

use std::collections::BTreeSet;

use common::{Server, pg_client as pg_connect};

#[test]
fn serial_and_identity_columns_number_rows() {
    let s = Server::start();
    let mut c = pg_connect(&s);
    c.batch_execute(
        "CREATE TABLE s (id serial PRIMARY KEY, name text); \
         CREATE TABLE b (id bigserial PRIMARY KEY, n integer); \
         CREATE TABLE g (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n integer)",
    )
    .expect("create");
    let ids: Vec<i32> = c
        .query("INSERT INTO s (name) VALUES ('a'), ('b') RETURNING id", &[])
        .expect("insert")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [1, 2]);
    let id: i64 = c
        .query_one("INSERT INTO b (n) VALUES (7) RETURNING id", &[])
        .expect("insert")
        .get(0);
    assert_eq!(id, 1);
    let id: i64 = c
        .query_one("INSERT INTO g (n) VALUES (7) RETURNING id", &[])
        .expect("insert")
        .get(0);
    assert_eq!(id, 1);
    // COPY without the column numbers its rows as well.
    let mut w = c.copy_in("COPY s (name) FROM STDIN").expect("copy");
    std::io::Write::write_all(&mut w, b"c\nd\n").expect("copy data");
    assert_eq!(w.finish().expect("copy end"), 2);
    let rows: Vec<(i32, String)> = c
        .query("SELECT id, name FROM s ORDER BY id", &[])
        .expect("select")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        [
            (1, "a".into()),
            (2, "b".into()),
            (3, "c".into()),
            (4, "d".into())
        ]
    );
    let default: String = c
        .query_one(
            "SELECT column_default FROM information_schema.columns \
             WHERE table_name = 's' AND column_name = 'id'",
            &[],
        )
        .expect("catalog")
        .get(0);
    assert_eq!(default, "nextval('s_id_seq')");

    // A smallserial past its type's range: 22003, nothing stored, the server serves on.
    c.batch_execute(
        "CREATE TABLE tiny (id smallserial PRIMARY KEY, n integer); \
         INSERT INTO tiny (id, n) VALUES (32767, 1)",
    )
    .expect("setup");
    let e = c
        .execute("INSERT INTO tiny (n) VALUES (2)", &[])
        .expect_err("out of range");
    assert_eq!(e.code().map(|c| c.code()), Some("22003"), "{e:?}");
    let count: i64 = c
        .query_one("SELECT count(*) FROM tiny", &[])
        .expect("count")
        .get(0);
    assert_eq!(count, 1);
}

#[test]
fn serial_values_stay_distinct_across_connections_and_a_crash() {
    let mut s = Server::start();
    pg_connect(&s)
        .batch_execute("CREATE TABLE events (id bigserial PRIMARY KEY, worker integer)")
        .expect("create");
    let port = s.pg_port();
    let workers: Vec<_> = (0..4i32)
        .map(|w| {
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(
                    &format!("host=127.0.0.1 port={port} user=tester dbname=tissdb"),
                    postgres::NoTls,
                )
                .expect("connect");
                (0..50)
                    .map(|_| {
                        c.query_one(
                            "INSERT INTO events (worker) VALUES ($1) RETURNING id",
                            &[&w],
                        )
                        .expect("insert")
                        .get::<_, i64>(0)
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut acked = BTreeSet::new();
    for w in workers {
        for id in w.join().expect("worker") {
            assert!(acked.insert(id), "id {id} handed out twice");
        }
    }
    assert_eq!(acked.len(), 200);
    assert_eq!(
        acked.iter().copied().collect::<Vec<_>>(),
        (1..=200).collect::<Vec<i64>>()
    );
    s.kill_9();
    s.restart();
    let mut c = pg_connect(&s);
    let next: i64 = c
        .query_one("INSERT INTO events (worker) VALUES (9) RETURNING id", &[])
        .expect("insert after restart")
        .get(0);
    assert_eq!(
        next, 201,
        "numbering resumes above every acknowledged value"
    );
    let count: i64 = c
        .query_one("SELECT count(*) FROM events", &[])
        .expect("count")
        .get(0);
    assert_eq!(count, 201);
}

#[test]
fn default_in_prepared_values_takes_the_columns_default() {
    let s = Server::start();
    let mut c = pg_connect(&s);
    c.batch_execute("CREATE TABLE dv (id serial PRIMARY KEY, name text, qty int DEFAULT 3)")
        .unwrap();
    let insert = c
        .prepare("INSERT INTO dv (id, name, qty) VALUES (DEFAULT, $1, DEFAULT) RETURNING id, qty")
        .unwrap();
    assert_eq!(insert.params(), &[postgres::types::Type::TEXT]);
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let row = c.query_one(&insert, &[&name]).unwrap();
        ids.push(row.get::<_, i32>(0));
        assert_eq!(row.get::<_, Option<i32>>(1), Some(3));
    }
    assert_eq!(ids, [1, 2, 3]);
    // Two rows, DEFAULT in a different place in each.
    let n = c
        .execute(
            "INSERT INTO dv (id, name, qty) VALUES ($1, DEFAULT, 9), (DEFAULT, $2, $3)",
            &[&50i32, &"e", &7i32],
        )
        .unwrap();
    assert_eq!(n, 2);
    let rows: Vec<(i32, Option<String>, Option<i32>)> = c
        .query("SELECT id, name, qty FROM dv WHERE id > 3 ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows, [(4, Some("e".into()), Some(7)), (50, None, Some(9))]);
}
