//! Point reads and insert duplicate checks that find one row in a segment's CSV block
//! (typed rows of scalars) without decoding the block: ids and strings that look like
//! one another's rows, over the wire, with the block cache too small to keep decoded
//! blocks and with it at its default.

mod common;

use common::{Server, pg_client};

/// Ids that look like each other's rows in a block's CSV text.
const IDS: [&str; 6] = ["7", "\"7,\n", "7,", "x\ny", "", "70"];

fn load(client: &mut postgres::Client) {
    client
        .batch_execute("CREATE TABLE t (id text PRIMARY KEY, s text, n int)")
        .expect("create");
    let insert = client
        .prepare("INSERT INTO t (id, s, n) VALUES ($1, $2, $3)")
        .expect("prepare");
    // Rows whose ids sort before those of IDS (but the empty one), with cells that hold
    // the text of those rows' starts, enough for several blocks.
    for i in 0..3000 {
        let id = format!("!{i:05}");
        let s = format!("row {i}\n7,\n70,\n7,,\"7,\n\",x\ny,");
        client.execute(&insert, &[&id, &s, &i]).expect("insert");
    }
    for (i, id) in IDS.iter().enumerate() {
        let s = format!("{id}\n{id},{i}");
        client
            .execute(&insert, &[id, &s, &(i as i32)])
            .expect("insert a look-alike id");
    }
    client.batch_execute("VACUUM t").expect("flush to segments");
}

fn check(server: &Server, stage: &str) {
    let mut client = pg_client(server);
    // Duplicate checks first, while no block of the segment is cached.
    for id in IDS {
        let err = client
            .execute("INSERT INTO t (id, s, n) VALUES ($1, 'dup', 0)", &[&id])
            .expect_err("a duplicate id");
        assert_eq!(
            err.code().map(|c| c.code()),
            Some("23505"),
            "{stage}: {id:?}: {err}"
        );
        let added = client
            .execute(
                "INSERT INTO t (id, s, n) VALUES ($1, 'dup', 0) ON CONFLICT DO NOTHING",
                &[&id],
            )
            .expect("on conflict");
        assert_eq!(added, 0, "{stage}: {id:?}");
    }
    for (i, id) in IDS.iter().enumerate() {
        let row = client
            .query_opt("SELECT s, n FROM t WHERE id = $1", &[id])
            .expect("point read")
            .unwrap_or_else(|| panic!("{stage}: {id:?} not found"));
        assert_eq!(
            row.get::<_, String>(0),
            format!("{id}\n{id},{i}"),
            "{stage}"
        );
        assert_eq!(row.get::<_, i32>(1), i as i32, "{stage}");
    }
    let row = client
        .query_one("SELECT s, n FROM t WHERE id = '!01234'", &[])
        .expect("an ordinary row");
    assert_eq!(
        row.get::<_, String>(0),
        "row 1234\n7,\n70,\n7,,\"7,\n\",x\ny,"
    );
    // Ids absent from the table, though their text is in the block.
    for id in ["7,\"7", "y", "!", "row 1", "7,,"] {
        assert!(
            client
                .query_opt("SELECT n FROM t WHERE id = $1", &[&id])
                .expect("point read")
                .is_none(),
            "{stage}: {id:?}"
        );
    }
    let count: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .expect("count")
        .get(0);
    assert_eq!(count, 3000 + IDS.len() as i64, "{stage}: nothing was added");
}

#[test]
fn rows_are_found_in_csv_blocks_among_look_alike_cells() {
    let mut small = Server::start_with_env(&[("TISSDB_BLOCK_CACHE_SIZE", "4KiB")]);
    load(&mut pg_client(&small));
    small.terminate();
    small.restart();
    check(&small, "cache too small for a block");

    let mut normal = Server::start();
    load(&mut pg_client(&normal));
    normal.terminate();
    normal.restart();
    check(&normal, "default cache");
}
