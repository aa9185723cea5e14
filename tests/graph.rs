//! Property graphs: CREATE/DROP PROPERTY GRAPH and GRAPH_TABLE pattern matching, each
//! answer checked against the equivalent hand-written join or WITH RECURSIVE query on
//! the same data.

mod common;

use common::{open, open_at, run};
use tissdb::Session;

/// A social graph: people, who knows whom (with cycles), and the cities they live in.
fn setup(s: &mut Session, people: usize, seed: u64) {
    let out = run(
        s,
        "CREATE TABLE person (id int PRIMARY KEY, name text, age int);
         CREATE TABLE knows (id int PRIMARY KEY, src int, dst int, since int);
         CREATE TABLE city (id int PRIMARY KEY, name text);
         CREATE TABLE lives_in (id int PRIMARY KEY, person_id int, city_id int);
         CREATE PROPERTY GRAPH social
           VERTEX TABLES (person, city KEY (id) LABEL town)
           EDGE TABLES (
             knows SOURCE KEY (src) REFERENCES person (id) DESTINATION KEY (dst) REFERENCES person (id),
             lives_in SOURCE KEY (person_id) REFERENCES person (id)
                      DESTINATION KEY (city_id) REFERENCES city (id) LABEL lives
           )",
    );
    assert!(out.iter().all(|l| !l.starts_with("ERROR")), "{out:?}");
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let people_rows: Vec<String> = (1..=people)
        .map(|i| format!("({i}, 'p{i}', {})", 20 + next() % 40))
        .collect();
    run(
        s,
        &format!("INSERT INTO person VALUES {}", people_rows.join(",")),
    );
    let mut edges = Vec::new();
    for i in 0..people * 3 {
        let a = 1 + next() % people as u64;
        let b = 1 + next() % people as u64;
        edges.push(format!("({i}, {a}, {b}, {})", 2000 + next() % 20));
    }
    run(s, &format!("INSERT INTO knows VALUES {}", edges.join(",")));
    run(
        s,
        "INSERT INTO city VALUES (1, 'oslo'), (2, 'rome'), (3, 'lima')",
    );
    let lives: Vec<String> = (1..=people)
        .map(|i| format!("({i}, {i}, {})", 1 + next() % 3))
        .collect();
    run(
        s,
        &format!("INSERT INTO lives_in VALUES {}", lives.join(",")),
    );
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn same(s: &mut Session, graph: &str, plain: &str) -> usize {
    let a = sorted(run(s, graph));
    let b = sorted(run(s, plain));
    assert!(a.iter().all(|l| !l.starts_with("ERROR")), "{graph}: {a:?}");
    assert_eq!(a, b, "\n{graph}\nvs\n{plain}");
    a.len()
}

#[test]
fn fixed_patterns_match_the_equivalent_joins() {
    let (_d, db) = open();
    let mut s = Session::new(db);
    setup(&mut s, 40, 7);
    let n = same(
        &mut s,
        "SELECT * FROM GRAPH_TABLE (social MATCH (a IS person)-[k IS knows]->(b IS person)
           WHERE a.age > 30 COLUMNS (a.name AS a, b.name AS b, k.since AS since)) AS g",
        "SELECT a.name, b.name, k.since FROM person a JOIN knows k ON k.src = a.id
           JOIN person b ON b.id = k.dst WHERE a.age > 30",
    );
    assert!(n > 10, "{n} rows");
    // Backwards, two hops, and across labels.
    same(
        &mut s,
        "SELECT x, c FROM GRAPH_TABLE (social MATCH (a IS person)<-[IS knows]-(b IS person)-[IS lives]->(t IS town)
           WHERE a.id = 3 COLUMNS (b.name AS x, t.name AS c)) g",
        "SELECT b.name, t.name FROM person a JOIN knows k ON k.dst = a.id JOIN person b ON b.id = k.src
           JOIN lives_in l ON l.person_id = b.id JOIN city t ON t.id = l.city_id WHERE a.id = 3",
    );
    // Unlabeled edge between labeled vertices: the one edge table that fits.
    same(
        &mut s,
        "SELECT count(*) FROM GRAPH_TABLE (social MATCH (p IS person)-[]->(t IS town) COLUMNS (t.name AS town)) g",
        "SELECT count(*) FROM lives_in",
    );
}

#[test]
fn quantified_paths_match_the_equivalent_recursive_queries() {
    let (_d, db) = open();
    let mut s = Session::new(db);
    setup(&mut s, 60, 11);
    for (min, max) in [(1, 1), (1, 3), (2, 3), (0, 2)] {
        same(
            &mut s,
            &format!(
                "SELECT * FROM GRAPH_TABLE (social MATCH (a IS person)-[IS knows]->{{{min},{max}}}(b IS person)
                   WHERE a.id = 5 COLUMNS (a.id AS a, b.id AS b)) g"
            ),
            &format!(
                "WITH RECURSIVE w(start, node, hops) AS (
                   SELECT id, id, 0 FROM person WHERE id = 5
                   UNION ALL
                   SELECT w.start, k.dst, w.hops + 1 FROM w JOIN knows k ON k.src = w.node WHERE w.hops < {max})
                 SELECT start, node FROM w WHERE hops >= {min}"
            ),
        );
    }
    // Reachability within 3 hops (distinct), from every person at once.
    let n = same(
        &mut s,
        "SELECT DISTINCT a, b FROM GRAPH_TABLE (social MATCH (x IS person)-[IS knows]->{1,3}(y IS person) COLUMNS (x.id AS a, y.id AS b)) g",
        "WITH RECURSIVE r(start, node, hops) AS (
           SELECT src, dst, 1 FROM knows
           UNION ALL
           SELECT r.start, k.dst, r.hops + 1 FROM r JOIN knows k ON k.src = r.node WHERE r.hops < 3)
         SELECT DISTINCT start, node FROM r",
    );
    assert!(n > 100, "{n}");
    let plan = run(
        &mut s,
        "EXPLAIN SELECT * FROM GRAPH_TABLE (social MATCH (a IS person)-[IS knows]->{1,3}(b IS person) WHERE a.id = 5 COLUMNS (b.id)) g",
    )
    .join("\n");
    assert!(plan.contains("Recursive Union All"), "{plan}");
    assert!(plan.contains("Hash Join"), "{plan}");
}

#[test]
fn graphs_persist_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open_at(dir.path());
        let mut s = Session::new(db.clone());
        setup(&mut s, 10, 3);
        db.close().unwrap();
    }
    let db = open_at(dir.path());
    let mut s = Session::new(db);
    assert_eq!(
        run(
            &mut s,
            "SELECT count(*) FROM GRAPH_TABLE (social MATCH (a IS person)-[IS knows]->(b IS person) COLUMNS (a.id)) g"
        ),
        vec!["30"]
    );
    for (sql, code) in [
        (
            "SELECT * FROM GRAPH_TABLE (nope MATCH (a) COLUMNS (a.id)) g",
            "42704",
        ),
        (
            "SELECT * FROM GRAPH_TABLE (social MATCH (a IS robot) COLUMNS (a.id)) g",
            "42704",
        ),
        (
            "SELECT * FROM GRAPH_TABLE (social MATCH (a IS town)-[IS knows]->(b IS person) COLUMNS (a.id)) g",
            "42704",
        ),
        (
            "SELECT * FROM GRAPH_TABLE (social MATCH (a) COLUMNS (a.id)) g",
            "0A000",
        ),
        (
            "SELECT * FROM GRAPH_TABLE (social MATCH (a IS person)-[e]-(b IS person) COLUMNS (a.id)) g",
            "42601",
        ),
        (
            "SELECT * FROM GRAPH_TABLE (social MATCH (a IS person)-[IS knows]->{1,500}(b IS person) COLUMNS (a.id)) g",
            "42601",
        ),
        (
            "SELECT * FROM GRAPH_TABLE (social MATCH (a IS person)-[IS knows]->(a IS person) COLUMNS (a.id)) g",
            "0A000",
        ),
        (
            "CREATE PROPERTY GRAPH social VERTEX TABLES (person)",
            "42710",
        ),
        ("CREATE PROPERTY GRAPH g2 VERTEX TABLES (nosuch)", "42P01"),
        (
            "CREATE PROPERTY GRAPH g3 VERTEX TABLES (person) EDGE TABLES (knows SOURCE KEY (src) REFERENCES city (id) DESTINATION KEY (dst) REFERENCES person (id))",
            "42704",
        ),
        ("DROP PROPERTY GRAPH nope", "42704"),
    ] {
        let out = run(&mut s, sql);
        assert!(
            out[0].starts_with(&format!("ERROR {code}")),
            "{sql}: {out:?}"
        );
    }
    assert_eq!(
        run(
            &mut s,
            "DROP PROPERTY GRAPH IF EXISTS nope; DROP PROPERTY GRAPH social"
        ),
        vec!["DROP PROPERTY GRAPH", "DROP PROPERTY GRAPH"]
    );
    let out = run(
        &mut s,
        "SELECT * FROM GRAPH_TABLE (social MATCH (a IS person) COLUMNS (a.id)) g",
    );
    assert!(out[0].starts_with("ERROR 42704"), "{out:?}");
}
