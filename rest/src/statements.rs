//! Statements `_query` prepared before, by text and parameter types, shared by all
//! requests: outside a transaction a repeated query skips parsing and binding, and its
//! plan is kept too (see `tissdb::query::plan_cache`). An entry is valid for the catalog
//! version it was prepared at (a new column, index or table prepares it afresh); at most
//! [`MAX_STATEMENTS`] are kept, and past that the cache starts over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tissdb::query::SqlType;
use tissdb::session::Prepared;

/// Statements kept at most.
pub const MAX_STATEMENTS: usize = 256;

/// Longest statement text kept.
pub const MAX_TEXT: usize = 8 << 10;

/// Statements prepared from one text: the parameter types they were prepared with, the
/// catalog version, the statement.
type Variants = Vec<(Vec<Option<SqlType>>, u64, Arc<Prepared>)>;

/// See the module doc.
#[derive(Default)]
pub struct Statements {
    kept: Mutex<HashMap<String, Variants>>,
}

impl Statements {
    /// The statement prepared from `sql` with `hints` at `catalog_version`, if kept.
    pub fn get(
        &self,
        sql: &str,
        hints: &[Option<SqlType>],
        catalog_version: u64,
    ) -> Option<Arc<Prepared>> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.get(sql)?
            .iter()
            .find(|(h, version, _)| h == hints && *version == catalog_version)
            .map(|(_, _, prepared)| prepared.clone())
    }

    /// Keeps `prepared`, prepared from `sql` with `hints` at `catalog_version`, in place
    /// of any other prepared from the same text and types.
    pub fn put(
        &self,
        sql: &str,
        hints: &[Option<SqlType>],
        catalog_version: u64,
        prepared: Arc<Prepared>,
    ) {
        if sql.len() > MAX_TEXT {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.values().map(Vec::len).sum::<usize>() >= MAX_STATEMENTS {
            kept.clear();
        }
        let variants = kept.entry(sql.to_string()).or_default();
        match variants.iter_mut().find(|(h, _, _)| h == hints) {
            Some(slot) => *slot = (hints.to_vec(), catalog_version, prepared),
            None => variants.push((hints.to_vec(), catalog_version, prepared)),
        }
    }
}
