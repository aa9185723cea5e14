//! Real clients against the real `tissdb` binary: runs `compat/run.sh --server-bin
//! <this build's tissdb>`, which starts the server on free loopback ports with a temporary
//! data directory and runs every suite in `compat/` (psycopg 3, psycopg2, asyncpg,
//! SQLAlchemy, pandas, node-postgres, pgjdbc, and the BI tools' catalog queries).
//!
//! The clients come from `compat/install.sh` (CI runs it before the tests; run.sh also
//! runs it when something is missing). The same suites pass against PostgreSQL 15:
//! `bash compat/run.sh --conninfo "$(bash .ci/postgres.sh start)"`.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn compat_suites_pass_against_tissdb() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf();
    let output = Command::new("bash")
        .arg(root.join("compat/run.sh"))
        .arg("--server-bin")
        .arg(env!("CARGO_BIN_EXE_tissdb"))
        .current_dir(&root)
        .output()
        .expect("run compat/run.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Shown on failure (and with --nocapture): the per-suite PASS/FAIL lines and, for each
    // failing suite, its full output.
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "compat/run.sh exited with {}; the suites' output is above",
        output.status
    );
}
