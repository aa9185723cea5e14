//! TissQL: the SQL dialect of TissDB, text to AST only.
//!
//! It is PostgreSQL's grammar as sqlparser knows it; TissQL's own statements are added
//! through the dialect's hooks as they arrive.

pub use sqlparser;
