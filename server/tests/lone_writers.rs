//! A lone connection's writes: with no other connection on its connection thread, a
//! write that finds the WAL idle writes and fsyncs it on that thread
//! (`tissdb::company`, `WhenIdle::WriteHere`) instead of handing its record to the WAL
//! thread. Through both front-ends: the WAL's counters (`GET /`) show that it did, and
//! SIGKILL loses none of the writes it acknowledged. And `pg_stat_wal`, the same
//! counters over SQL.

mod common;

use common::{Server, pg_client};
use serde_json::{Value as Json, json};

/// The WAL counters of `GET /`: (records, writes, writes_by_committers).
fn wal(s: &Server) -> (u64, u64, u64) {
    let info = s.get("/").json();
    let n = |name: &str| {
        info["wal"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("GET / has no wal.{name}: {info}"))
    };
    (n("records"), n("writes"), n("writes_by_committers"))
}

#[test]
fn a_lone_wire_connection_writes_the_wal_itself_and_kill_9_loses_nothing() {
    let mut s = Server::start();
    let mut c = pg_client(&s);
    c.batch_execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
        .unwrap();
    let (records0, writes0, ours0) = wal(&s);
    let insert = c.prepare("INSERT INTO t (id, v) VALUES ($1, $2)").unwrap();
    for i in 0..200i32 {
        assert_eq!(c.execute(&insert, &[&i, &format!("v{i}")]).unwrap(), 1);
    }
    // The simple protocol takes the same way.
    for i in 200..250i32 {
        c.batch_execute(&format!("INSERT INTO t (id, v) VALUES ({i}, 'v{i}')"))
            .unwrap();
    }
    let (records1, writes1, ours1) = wal(&s);
    assert!(
        records1 - records0 >= 250,
        "{records0} -> {records1} records"
    );
    assert!(writes1 - writes0 <= records1 - records0);
    assert!(
        ours1 - ours0 >= 225,
        "of 250 lone inserts, {} were written by the connection's own thread",
        ours1 - ours0
    );
    // An UPDATE and a DELETE, and a transaction's COMMIT, too.
    c.batch_execute("UPDATE t SET v = 'changed' WHERE id = 7; DELETE FROM t WHERE id = 8")
        .unwrap();
    let mut tx = c.transaction().unwrap();
    tx.execute("UPDATE t SET v = 'in a transaction' WHERE id = 9", &[])
        .unwrap();
    tx.commit().unwrap();
    assert!(wal(&s).2 > ours1, "the later writes were written here too");

    s.kill_9();
    s.restart();
    let mut c = pg_client(&s);
    let rows = c.query("SELECT id, v FROM t ORDER BY id", &[]).unwrap();
    assert_eq!(
        rows.len(),
        249,
        "every acknowledged insert, less the delete"
    );
    for row in rows {
        let (id, v): (i32, String) = (row.get(0), row.get(1));
        let want = match id {
            7 => "changed".to_string(),
            9 => "in a transaction".to_string(),
            _ => format!("v{id}"),
        };
        assert_eq!(v, want, "row {id}");
        assert_ne!(id, 8, "the delete was acknowledged");
    }
}

fn doc(i: usize) -> Json {
    json!({"id": format!("d{i:04}"), "n": i, "nested": {"tags": ["a", i]}})
}

#[test]
fn a_lone_rest_connection_writes_the_wal_itself_and_kill_9_loses_nothing() {
    let mut s = Server::start();
    s.create_collection("lone");
    let (records0, _, ours0) = wal(&s);
    // One client, so one keep-alive connection, one request at a time.
    for i in 0..200 {
        let r = s.post_json("/lone", &doc(i));
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = s.put_json("/lone/d0003", &json!({"n": "replaced"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.delete("/lone/d0004").status, 200);
    let (records1, _, ours1) = wal(&s);
    assert!(
        records1 - records0 >= 202,
        "{records0} -> {records1} records"
    );
    assert!(
        ours1 - ours0 >= 180,
        "of 202 lone writes, {} were written by the connection's own thread",
        ours1 - ours0
    );

    s.kill_9();
    s.restart();
    for i in 0..200 {
        let want = match i {
            3 => Some(json!({"id": "d0003", "n": "replaced"})),
            4 => None,
            _ => Some(doc(i)),
        };
        assert_eq!(s.get_doc("lone", &format!("d{i:04}")), want, "d{i:04}");
    }
}

/// `pg_stat_wal` over the wire: the same counters as `GET /`, one record per commit
/// (an autocommit INSERT, a whole transaction), every write synced.
#[test]
fn pg_stat_wal_counts_the_commits_and_writes_get_shows() {
    let s = Server::start();
    let mut c = pg_client(&s);
    c.batch_execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
        .unwrap();
    // (wal_records, wal_write, wal_sync, wal_bytes)
    let mut stat = || {
        let row = c
            .query_one(
                "SELECT wal_records, wal_write, wal_sync, wal_bytes::text FROM pg_stat_wal",
                &[],
            )
            .unwrap();
        let bytes: String = row.get(3);
        (
            row.get::<_, i64>(0) as u64,
            row.get::<_, i64>(1) as u64,
            row.get::<_, i64>(2) as u64,
            bytes.parse::<u64>().unwrap(),
        )
    };
    let (records0, writes0, syncs0, bytes0) = stat();
    let (get_records, get_writes, _) = wal(&s);
    assert_eq!((records0, writes0), (get_records, get_writes));
    assert_eq!(syncs0, writes0);

    let mut c2 = pg_client(&s);
    for i in 0..50i32 {
        c2.execute("INSERT INTO t (id, v) VALUES ($1, 'x')", &[&i])
            .unwrap();
    }
    let (records1, writes1, syncs1, bytes1) = stat();
    assert_eq!(records1 - records0, 50, "one record per autocommit INSERT");
    assert!(
        (1..=50).contains(&(writes1 - writes0)),
        "{writes0} -> {writes1} writes for 50 commits"
    );
    assert_eq!(syncs1, writes1);
    assert!(bytes1 > bytes0 + 50 * 10, "{bytes0} -> {bytes1} bytes");

    let mut tx = c2.transaction().unwrap();
    for i in 50..60i32 {
        tx.execute("INSERT INTO t (id, v) VALUES ($1, 'y')", &[&i])
            .unwrap();
    }
    tx.commit().unwrap();
    let (records2, writes2, _, _) = stat();
    assert_eq!(records2 - records1, 1, "a transaction is one record");
    assert_eq!(writes2 - writes1, 1);

    // Reset when the server opened its data directory; nine columns, as PostgreSQL 15.
    let row = c
        .query_one(
            "SELECT stats_reset <= now(), wal_fpi, wal_buffers_full, wal_write_time,
                    (SELECT count(*) FROM pg_attribute a JOIN pg_class r ON a.attrelid = r.oid
                      WHERE r.relname = 'pg_stat_wal')
               FROM pg_stat_wal",
            &[],
        )
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!((row.get::<_, i64>(1), row.get::<_, i64>(2)), (0, 0));
    assert_eq!(row.get::<_, f64>(3), 0.0);
    assert_eq!(row.get::<_, i64>(4), 9);
}
