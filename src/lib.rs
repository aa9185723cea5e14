//! TissDB: a document database that speaks SQL.
//!
//! This crate is the engine. A document written over REST follows these steps:
//!
//! 1. `tissdb-rest` decodes the body (JSON or XML, [`doc`]) into an [`doc::Object`]
//!    under the configured limits and calls a [`Session`] document operation.
//! 2. [`Session`] resolves the collection through the [`catalog`], validates the id, and
//!    hands a batch of [`storage::Op`]s to [`storage::Storage::write`].
//! 3. The storage engine appends the batch to the WAL and fsyncs it, sharing the fsync
//!    with concurrent writers (group commit), then inserts it into the memtable.
//! 4. The write is acknowledged. Later a background thread flushes the memtable to a
//!    segment file of compressed XML or CSV blocks and records it in the manifest; the
//!    compaction thread merges segments and purges deleted documents.
//!
//! Errors carry a SQLSTATE ([`error`]); each front-end maps them in one place.

pub mod catalog;
pub mod company;
pub mod config;
pub mod database;
pub mod doc;
pub mod error;
pub mod query;
pub mod session;
pub mod storage;
pub mod txn;

pub use config::Config;
pub use database::Database;
pub use error::{Error, Result, SqlState};
pub use session::Session;
