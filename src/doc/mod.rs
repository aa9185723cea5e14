//! The document model: [`Value`], [`Object`], and the codecs that carry values in and out
//! without losing their types — JSON for clients, XML for clients and hierarchical
//! segment blocks, CSV for blocks of scalar rows, and a compact binary form for the WAL
//! and the memtable.

pub mod binary;
pub mod csv_block;
pub mod json;
pub mod keycode;
pub mod path;
pub mod text;
pub mod value;
pub mod xml;

pub use value::{Limits, Object, Value};
