//! Window functions through the engine's `Session`: the WindowAgg plan, result types,
//! parameters in offsets, the memory limit, and results over a few thousand rows checked
//! against values computed here. Results against PostgreSQL's are in tests/slt/window.slt.

mod common;

use common::{open, run};
use tissdb::doc::Value;
use tissdb::query::{Outcome, SqlType};
use tissdb::{Config, Database, Session};

fn session() -> (tempfile::TempDir, Session) {
    let (dir, db) = open();
    let mut s = Session::new(db);
    let out = run(
        &mut s,
        "CREATE TABLE wt (id int PRIMARY KEY, g text, v int);
         INSERT INTO wt VALUES (1, 'a', 10), (2, 'a', 20), (3, 'a', 20), (4, 'b', 5), (5, 'b', NULL);",
    );
    assert!(out.iter().all(|l| !l.starts_with("ERROR")), "{out:?}");
    (dir, s)
}

#[test]
fn explain_shows_a_window_agg_under_the_projection() {
    let (_d, mut s) = session();
    let plan = run(
        &mut s,
        "EXPLAIN SELECT id, rank() OVER (PARTITION BY g ORDER BY v DESC), sum(v) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM wt ORDER BY id",
    );
    let text = plan.join("\n");
    let window = plan
        .iter()
        .position(|l| l.contains("WindowAgg"))
        .unwrap_or_else(|| panic!("no WindowAgg in {text}"));
    let project = plan.iter().position(|l| l.contains("Project")).unwrap();
    assert!(project < window, "{text}");
    assert!(
        text.contains("rank() OVER (PARTITION BY g ORDER BY v DESC)"),
        "{text}"
    );
    assert!(
        text.contains("sum(v) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)"),
        "{text}"
    );
    assert!(text.contains("Seq Scan on wt"), "{text}");
}

#[test]
fn result_types_follow_postgresql() {
    let (_d, mut s) = session();
    let out = s.execute_batch(
        "SELECT row_number() OVER (), rank() OVER (), count(*) OVER (), sum(v) OVER (),
                avg(v) OVER (), lag(v) OVER (), lag(v, 1, 0.5) OVER (), ntile(2) OVER (),
                cume_dist() OVER (), first_value(g) OVER ()
         FROM wt",
    );
    let Ok(Outcome::Rows { columns, .. }) = &out[0] else {
        panic!("{out:?}");
    };
    let types: Vec<SqlType> = columns.iter().map(|c| c.ty.clone()).collect();
    assert_eq!(
        types,
        vec![
            SqlType::Int8,
            SqlType::Int8,
            SqlType::Int8,
            SqlType::Int8,
            SqlType::Numeric,
            SqlType::Int4,
            SqlType::Numeric,
            SqlType::Int4,
            SqlType::Float8,
            SqlType::Text,
        ]
    );
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names[0], "row_number");
    assert_eq!(names[3], "sum");
}

#[test]
fn parameters_give_offsets() {
    let (_d, mut s) = session();
    let p = s
        .prepare(
            "SELECT id, lag(id, $1) OVER (ORDER BY id), sum(id) OVER (ORDER BY id ROWS BETWEEN $2 PRECEDING AND CURRENT ROW) FROM wt ORDER BY id",
            &[],
        )
        .unwrap();
    let Outcome::Rows { rows, .. } = s.execute(&p, &[Value::Int(2), Value::Int(1)]).unwrap() else {
        panic!("no rows");
    };
    let got: Vec<Vec<Value>> = rows;
    let int = Value::Int;
    assert_eq!(
        got,
        vec![
            vec![int(1), Value::Null, int(1)],
            vec![int(2), Value::Null, int(3)],
            vec![int(3), int(1), int(5)],
            vec![int(4), int(2), int(7)],
            vec![int(5), int(3), int(9)],
        ]
    );
    let err = s.execute(&p, &[Value::Int(1), Value::Int(-1)]).unwrap_err();
    assert_eq!(err.sqlstate().to_string(), "22013", "{err}");
}

#[test]
fn the_memory_limit_stops_a_window_over_too_many_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(Config {
        data_dir: dir.path().to_path_buf(),
        query_memory_limit: 64 << 10,
        ..Config::default()
    })
    .unwrap();
    let mut s = Session::new(db);
    run(
        &mut s,
        "CREATE TABLE wbig (id int PRIMARY KEY, pad text);
         INSERT INTO wbig SELECT x, repeat('p', 2000) FROM (WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 60) SELECT x FROM g) AS t",
    );
    assert_eq!(run(&mut s, "SELECT count(*) FROM wbig"), vec!["60"]);
    let out = run(
        &mut s,
        "SELECT id, row_number() OVER (ORDER BY pad) FROM wbig",
    );
    assert!(
        out[0].starts_with("ERROR 53200") && out[0].contains("a window function"),
        "{out:?}"
    );
    // Small inputs still run.
    assert_eq!(
        run(
            &mut s,
            "SELECT id, count(*) OVER () FROM wbig WHERE id <= 2 ORDER BY id"
        ),
        vec!["1|2", "2|2"]
    );
}

#[test]
fn results_over_thousands_of_rows_match_a_direct_computation() {
    let (_d, db) = open();
    let mut s = Session::new(db);
    const N: i64 = 3000;
    let value = |i: i64| (i * 37) % 101;
    let group = |i: i64| i % 7;
    let out = run(
        &mut s,
        &format!(
            "CREATE TABLE wn (id int PRIMARY KEY, g int, v int);
             INSERT INTO wn SELECT x, x % 7, (x * 37) % 101 FROM (WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {N}) SELECT x FROM s) AS t"
        ),
    );
    assert!(out.iter().all(|l| !l.starts_with("ERROR")), "{out:?}");
    let got = run(
        &mut s,
        "SELECT id, row_number() OVER (PARTITION BY g ORDER BY v, id),
                rank() OVER (PARTITION BY g ORDER BY v),
                dense_rank() OVER (PARTITION BY g ORDER BY v),
                sum(v) OVER (PARTITION BY g ORDER BY v),
                count(*) OVER (PARTITION BY g),
                lag(v, 2, -1) OVER (PARTITION BY g ORDER BY id),
                sum(v) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING)
         FROM wn ORDER BY id",
    );
    assert_eq!(got.len(), N as usize);
    let ids: Vec<i64> = (1..=N).collect();
    let mut expected = Vec::new();
    for &i in &ids {
        let (gi, vi) = (group(i), value(i));
        let same: Vec<i64> = ids.iter().copied().filter(|&j| group(j) == gi).collect();
        let row_number = same.iter().filter(|&&j| (value(j), j) <= (vi, i)).count();
        let rank = same.iter().filter(|&&j| value(j) < vi).count() + 1;
        let mut below: Vec<i64> = same.iter().map(|&j| value(j)).filter(|&v| v < vi).collect();
        below.sort();
        below.dedup();
        let dense_rank = below.len() + 1;
        let running: i64 = same.iter().map(|&j| value(j)).filter(|&v| v <= vi).sum();
        let position = same.iter().position(|&j| j == i).unwrap();
        let lag = if position >= 2 {
            value(same[position - 2])
        } else {
            -1
        };
        let moving: i64 = (i - 2..=i + 2)
            .filter(|j| (1..=N).contains(j))
            .map(value)
            .sum();
        expected.push(format!(
            "{i}|{row_number}|{rank}|{dense_rank}|{running}|{}|{lag}|{moving}",
            same.len()
        ));
    }
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e);
    }
}
