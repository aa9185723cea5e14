//! Crashes under the wire protocol's commits: SIGKILL while connections insert and
//! update through prepared statements and transactions. The wire acknowledges a write
//! only once the WAL's flusher thread has made it durable (writes are deferred, see
//! `tissdb::storage::durability`; `lone_writers.rs` has a connection alone on its
//! thread, which writes the WAL itself); every acknowledged write must be there after a
//! restart, and the unique index must agree with the rows (no entry left by a write
//! the crash lost).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, bounded, pg_connect};

/// What a writer was doing when the server died, unacknowledged.
#[derive(Clone, Debug)]
enum InFlight {
    Insert { id: i32, tag: String },
    Update { ids: [i32; 2] },
}

/// One writer's view: its rows with their acknowledged balances, and the write cut off.
#[derive(Default)]
struct Writer {
    rows: Vec<(i32, String, i32)>,
    in_flight: Option<InFlight>,
}

const WRITERS: usize = 8;

async fn write_until_cut_off(
    port_conn: tokio_postgres::Client,
    w: usize,
    acked: Arc<AtomicUsize>,
) -> Writer {
    let c = port_conn;
    let mut me = Writer::default();
    let Ok(insert) = c
        .prepare("INSERT INTO acc (id, owner, balance, tag) VALUES ($1, $2, 0, $3)")
        .await
    else {
        return me;
    };
    let Ok(update) = c
        .prepare("UPDATE acc SET balance = balance + 1 WHERE id = $1")
        .await
    else {
        return me;
    };
    let owner = format!("w{w}");
    for i in 0..100_000 {
        if i % 3 == 2 && me.rows.len() >= 2 {
            // Two of its own rows, in one transaction.
            let a = (i * 7) % me.rows.len();
            let b = (a + 1) % me.rows.len();
            let ids = [me.rows[a].0, me.rows[b].0];
            me.in_flight = Some(InFlight::Update { ids });
            let done = async {
                c.batch_execute("BEGIN").await?;
                c.execute(&update, &[&ids[0]]).await?;
                c.execute(&update, &[&ids[1]]).await?;
                c.batch_execute("COMMIT").await
            }
            .await;
            if done.is_err() {
                return me;
            }
            me.rows[a].2 += 1;
            me.rows[b].2 += 1;
        } else {
            let id = (w * 1_000_000 + i) as i32;
            let tag = format!("t{w}-{i}");
            me.in_flight = Some(InFlight::Insert {
                id,
                tag: tag.clone(),
            });
            if c.execute(&insert, &[&id, &owner, &tag]).await.is_err() {
                return me;
            }
            me.rows.push((id, tag, 0));
        }
        me.in_flight = None;
        acked.fetch_add(1, Ordering::Relaxed);
    }
    me
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_wire_writes_loses_no_acknowledged_write() {
    // A small memtable: memtable flushes, and so index tree commits, happen mid-stream.
    sigkill_during_wire_writes(&[("TISSDB_MEMTABLE_SIZE", "64KiB")]).await;
}

/// The same with a long commit delay: the WAL's flusher holds back each write until
/// half as many writers as last time have joined it (or 10 ms have passed), and a writer is
/// still acknowledged only once its record is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_a_long_commit_delay_loses_no_acknowledged_write() {
    sigkill_during_wire_writes(&[
        ("TISSDB_MEMTABLE_SIZE", "64KiB"),
        ("TISSDB_COMMIT_DELAY", "10000"),
    ])
    .await;
}

async fn sigkill_during_wire_writes(env: &[(&str, &str)]) {
    let mut s = Server::start_with_env(env);
    let setup = pg_connect(&s, "user=test").await;
    setup
        .batch_execute(
            "CREATE TABLE acc (id integer PRIMARY KEY, owner text, balance integer, tag text);
             CREATE UNIQUE INDEX acc_tag ON acc (tag)",
        )
        .await
        .expect("setup");
    let acked = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let client = pg_connect(&s, "user=test").await;
        writers.push(tokio::spawn(write_until_cut_off(client, w, acked.clone())));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.load(Ordering::Relaxed) < 3000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.kill_9();
    let mut states = Vec::new();
    for w in writers {
        states.push(
            bounded("a writer", Duration::from_secs(30), w)
                .await
                .expect("writer"),
        );
    }
    assert!(
        states.iter().all(|w| w.in_flight.is_some()),
        "every writer was cut off mid-stream"
    );
    let total: usize = states.iter().map(|w| w.rows.len()).sum();
    assert!(
        total >= 1000,
        "only {total} rows were acknowledged before the kill"
    );

    s.restart();
    let c = pg_connect(&s, "user=test").await;
    let rows = c
        .query("SELECT id, tag, balance FROM acc", &[])
        .await
        .expect("read back");
    let found: std::collections::HashMap<i32, (String, i32)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<_, i32>(0),
                (r.get::<_, String>(1), r.get::<_, i32>(2)),
            )
        })
        .collect();
    let in_flight: Vec<InFlight> = states.iter().filter_map(|w| w.in_flight.clone()).collect();
    for (w, state) in states.iter().enumerate() {
        for (id, tag, balance) in &state.rows {
            let Some((got_tag, got_balance)) = found.get(id) else {
                panic!("writer {w}: acknowledged row {id} is gone");
            };
            assert_eq!(got_tag, tag);
            // The transaction cut off may have become durable (+1), never more.
            let maybe_more =
                matches!(&state.in_flight, Some(InFlight::Update { ids }) if ids.contains(id));
            let allowed = if maybe_more {
                *balance..=*balance + 1
            } else {
                *balance..=*balance
            };
            assert!(
                allowed.contains(got_balance),
                "writer {w}: row {id} has balance {got_balance}, acknowledged {balance}"
            );
        }
    }
    // No row beyond what was acknowledged and what was in flight.
    let extra = found.len() - total;
    assert!(extra <= WRITERS, "{extra} rows nobody was told about");

    // The unique index agrees with the rows: each tag finds its row through it, and the
    // tag of an insert the crash lost is free again (no entry outlived its row).
    for (id, (tag, _)) in found.iter().take(300) {
        let via_index = c
            .query("SELECT id FROM acc WHERE tag = $1", &[tag])
            .await
            .expect("lookup by tag");
        assert_eq!(via_index.len(), 1, "tag {tag}");
        assert_eq!(via_index[0].get::<_, i32>(0), *id);
    }
    for f in &in_flight {
        let InFlight::Insert { id, tag } = f else {
            continue;
        };
        let again = c
            .execute(
                "INSERT INTO acc (id, owner, balance, tag) VALUES ($1, 'again', 0, $2)",
                &[&(id + 500_000), tag],
            )
            .await;
        match found.contains_key(id) {
            true => {
                let e = again.expect_err("the tag of a surviving row is taken");
                assert_eq!(
                    e.code(),
                    Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
                    "{e:?}"
                );
            }
            false => {
                again
                    .unwrap_or_else(|e| panic!("tag {tag} of a lost insert is still taken: {e:?}"));
            }
        }
    }
}
