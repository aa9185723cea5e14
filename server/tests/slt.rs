//! SQL semantics as sqllogictest files (`tests/slt/*.slt` at the workspace root), run
//! through a real PostgreSQL client (the `postgres` crate, simple query protocol) against
//! a real `tissdb` server.
//!
//! The same files run against PostgreSQL itself, to check that the expected outputs are
//! PostgreSQL's: set `SLT_POSTGRES=host=127.0.0.1 port=5432 user=postgres` (CI does,
//! with the cluster `.ci/run` starts). Cases where TissDB deliberately differs carry
//! `onlyif tissdb` / `skipif tissdb`, with the reason next to them.

mod common;

use std::path::PathBuf;

use sqllogictest::{DBOutput, DefaultColumnType};

/// A connection that renders every value as PostgreSQL's text form.
struct Conn {
    client: postgres::Client,
    engine: &'static str,
}

impl sqllogictest::DB for Conn {
    type Error = postgres::Error;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, postgres::Error> {
        let mut rows = Vec::new();
        let mut width = None;
        let mut affected = 0;
        for message in self.client.simple_query(sql)? {
            match message {
                postgres::SimpleQueryMessage::RowDescription(columns) => {
                    width = Some(columns.len())
                }
                postgres::SimpleQueryMessage::Row(row) => {
                    width = Some(row.len());
                    rows.push(
                        (0..row.len())
                            .map(|i| match row.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(s) => s.to_string(),
                            })
                            .collect(),
                    );
                }
                postgres::SimpleQueryMessage::CommandComplete(n) => affected = n,
                _ => {}
            }
        }
        Ok(match width {
            Some(w) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; w],
                rows,
            },
            None => DBOutput::StatementComplete(affected),
        })
    }

    fn engine_name(&self) -> &str {
        self.engine
    }

    fn error_sql_state(err: &postgres::Error) -> Option<String> {
        err.code().map(|c| c.code().to_string())
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

fn run_all(connect: impl Fn() -> postgres::Client, engine: &'static str) {
    let mut failures = Vec::new();
    for file in slt_files() {
        let connect = &connect;
        let mut runner = sqllogictest::Runner::new(|| async move {
            Ok::<_, postgres::Error>(Conn {
                client: connect(),
                engine,
            })
        });
        runner.add_label(engine);
        if let Err(e) = runner.run_file(&file) {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} .slt file(s) failed on {engine}:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn slt_files_pass_on_tissdb() {
    let server = common::Server::start();
    let port = server.pg_port();
    run_all(
        || {
            postgres::Client::connect(
                &format!("host=127.0.0.1 port={port} user=slt dbname=tissdb"),
                postgres::NoTls,
            )
            .expect("connect to tissdb")
        },
        "tissdb",
    );
}

/// Checks the expected outputs against PostgreSQL, when one is configured.
#[test]
fn slt_files_pass_on_postgres() {
    let Ok(conninfo) = std::env::var("SLT_POSTGRES") else {
        eprintln!("SLT_POSTGRES is not set: skipping the PostgreSQL cross-check");
        return;
    };
    run_all(
        || postgres::Client::connect(&conninfo, postgres::NoTls).expect("connect to postgres"),
        "postgres",
    );
}
