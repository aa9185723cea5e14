//! The real `psql` (15) against a real `tissdb` server: each script
//! `tests/psql/<name>.sql` runs with `psql -X -v ON_ERROR_STOP=1 -f <name>.sql`, and
//! what psql prints is compared exactly with the golden file `tests/psql/<name>.out`.
//!
//! The golden output is psql's stdout and stderr in one stream, in the order psql wrote
//! them (psql flushes stdout before it writes a message to stderr), so error lines such as
//! `psql:meta.sql:9: ERROR:  42P01: ...` sit between the results around them.
//!
//! After changing a script or the server, regenerate the golden files with
//! `UPDATE_GOLDENFILES=1 cargo test --release -p tissdb-server --test sql_psql`, then
//! read the diff line by line: a golden file that records a wrong answer is a bug.
//! `seed.out` and `typed.out` were checked against PostgreSQL 15 (the same scripts with
//! CREATE TABLE for CREATE COLLECTION and `->` for field paths): they differ only in
//! those statements' tags and in EXPLAIN. `meta.out` differs from PostgreSQL only in the
//! error details (positions of name errors, DETAIL and LOCATION lines).
//!
//! A test marked `#[ignore = "product bug: ..."]` has a golden file that is PostgreSQL's
//! own output, which TissDB does not print yet; do not regenerate it from TissDB.

mod common;

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every script in `tests/psql`, each run by the test of the same name.
const SCRIPTS: [&str; 9] = [
    "seed",
    "typed",
    "meta",
    "numeric_typmod",
    "indexes",
    "transactions",
    "catalog",
    "copy",
    "cursors",
];

/// How long one script may run.
const PSQL_TIMEOUT: Duration = Duration::from_secs(60);

fn psql_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/psql")
}

/// Runs `psql -f <script>` against `server` from the scripts' directory (so psql names
/// the script without a path); returns its exit code and everything it printed.
fn run_psql(server: &common::Server, script: &str) -> (Option<i32>, String) {
    // One file for stdout and stderr keeps psql's own order of the two.
    let mut output = tempfile::tempfile().expect("temp file for psql's output");
    let stdout = output.try_clone().expect("clone the output file");
    let stderr = output.try_clone().expect("clone the output file");
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-h", "127.0.0.1", "-U", "tester", "-d", "tissdb"])
        .arg("-p")
        .arg(server.pg_port().to_string())
        .args(["-v", "ON_ERROR_STOP=1", "-f", script])
        .current_dir(psql_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    // Nothing from the environment may change what psql prints or where it connects.
    for (name, _) in std::env::vars() {
        if name.starts_with("PG") || name.starts_with("PSQL") || name.starts_with("LC_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("LC_ALL", "C")
        .env("LANG", "C")
        .env("PGCLIENTENCODING", "UTF8")
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PAGER", "")
        .env("TZ", "UTC");
    let mut child = cmd.spawn().expect("run psql (is it installed?)");
    let deadline = Instant::now() + PSQL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for psql") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("psql -f {script} ran longer than {PSQL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut text = String::new();
    output
        .seek(SeekFrom::Start(0))
        .expect("rewind psql's output");
    output
        .read_to_string(&mut text)
        .expect("psql's output is UTF-8");
    (status.code(), text)
}

/// The first line where `actual` and `expected` differ, with a little context.
fn first_difference(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let at = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let from = at.saturating_sub(3);
    let show = |lines: &[&str]| {
        lines
            .iter()
            .enumerate()
            .skip(from)
            .take(at - from + 4)
            .map(|(i, l)| format!("{:>5} | {l}", i + 1))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "first difference at line {} (expected {} lines, got {}):\n--- expected\n{}\n--- actual\n{}",
        at + 1,
        e.len(),
        a.len(),
        show(&e),
        show(&a)
    )
}

/// Where a golden file comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Golden {
    /// TissDB's own output, reviewed line by line; `UPDATE_GOLDENFILES=1` rewrites it.
    TissDb,
    /// PostgreSQL's output, which TissDB must come to print; never rewritten.
    Postgres,
}

/// Runs `tests/psql/<name>.sql` on a fresh server and compares psql's output with
/// `tests/psql/<name>.out`, or rewrites that file when `UPDATE_GOLDENFILES=1` (unless
/// the golden file is PostgreSQL's).
fn check_script(name: &str, golden_from: Golden) {
    let mut server = common::Server::start();
    let script = format!("{name}.sql");
    let (code, actual) = run_psql(&server, &script);
    assert_eq!(
        code,
        Some(0),
        "psql -f {script} failed (exit code {code:?}):\n{actual}\nserver stderr:\n{}",
        server.stderr()
    );
    assert!(
        server.is_running(),
        "the server exited during {script}; stderr:\n{}",
        server.stderr()
    );
    let golden = psql_dir().join(format!("{name}.out"));
    if golden_from == Golden::TissDb && std::env::var("UPDATE_GOLDENFILES").as_deref() == Ok("1") {
        std::fs::write(&golden, &actual)
            .unwrap_or_else(|e| panic!("writing {}: {e}", golden.display()));
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e}\n(create it with UPDATE_GOLDENFILES=1)",
            golden.display()
        )
    });
    if actual != expected {
        panic!(
            "psql -f {script} printed something else than {}\n{}\n\nthe whole output:\n{actual}",
            golden.display(),
            first_difference(&expected, &actual)
        );
    }
}

#[test]
fn every_script_has_a_test_and_a_golden_file() {
    let mut found: Vec<String> = std::fs::read_dir(psql_dir())
        .expect("read tests/psql")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .expect("UTF-8 file name")
                .to_string()
        })
        .collect();
    found.sort();
    let mut listed: Vec<String> = SCRIPTS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "tests/psql/*.sql and SCRIPTS differ");
    for name in SCRIPTS {
        let golden = psql_dir().join(format!("{name}.out"));
        assert!(
            golden.exists() || std::env::var("UPDATE_GOLDENFILES").as_deref() == Ok("1"),
            "{} is missing",
            golden.display()
        );
    }
}

/// The seed's TissQL examples on the seed's documents.
#[test]
fn seed() {
    check_script("seed", Golden::TissDb);
}

/// A typed table: constraints, defaults, RETURNING, aggregates, EXPLAIN.
#[test]
fn typed() {
    check_script("typed", Golden::TissDb);
}

/// psql's ON_ERROR_STOP, VERBOSITY, error variables, transaction blocks, \gset, \x.
#[test]
fn meta() {
    check_script("meta", Golden::TissDb);
}

/// Secondary indexes: CREATE/DROP INDEX, the plans using them, pg_indexes.
#[test]
fn indexes() {
    check_script("indexes", Golden::TissDb);
}

/// numeric(p, s) rounding and overflow; the golden file is PostgreSQL 15's output.
#[test]
fn numeric_typmod() {
    check_script("numeric_typmod", Golden::Postgres);
}

/// Transaction blocks: ON_ERROR_ROLLBACK, failed blocks, savepoints, READ ONLY, isolation level.
#[test]
fn transactions() {
    check_script("transactions", Golden::TissDb);
}

/// psql's meta-commands (`\dt`, `\d`, `\d+`, `\di`, `\dn`, `\l`, `\du`, `\x`) and the
/// pg_catalog / information_schema queries behind them; nested fields as columns.
#[test]
fn catalog() {
    check_script("catalog", Golden::TissDb);
}

/// COPY: `\copy` from files and to stdout, inline COPY data, errors naming the line.
#[test]
fn copy() {
    check_script("copy", Golden::TissDb);
}

/// Cursors: DECLARE [WITH HOLD], FETCH, CLOSE, and their errors.
#[test]
fn cursors() {
    check_script("cursors", Golden::TissDb);
}
