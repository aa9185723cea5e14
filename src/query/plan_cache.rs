//! Plans of prepared statements kept from one execution to the next (the extended query
//! protocol's Bind/Execute): SELECTs, INSERTs, UPDATEs and DELETEs. Binding and
//! optimizing a point SELECT cost about as much as running it, and a single-row INSERT
//! or UPDATE by key spent a tenth of its time there, so a prepared statement executed
//! again reuses its bound and optimized plan while nothing it was planned against has
//! changed:
//!
//! - the catalog is at the version the plan was bound at ([`Catalog::version`] grows with
//!   every change to collections, columns, indexes, foreign keys and graphs);
//! - the session settings are the same (they steer the planner and catalog views);
//! - the statement runs outside an explicit transaction, as it was planned (a
//!   transaction's pending writes add columns to schemaless collections and take the
//!   indexes of the collections it wrote out of play). Inside a transaction only the
//!   plans nothing of that can touch are kept, apart from those made outside: an INSERT
//!   of values, or an UPDATE or DELETE that reads by key or scans, into a typed table
//!   (see [`Kept::fits_transaction`]);
//! - the binder marked the statement cacheable (no function calls, catalog views or table
//!   functions, whose results change while the catalog does not) and the plan has no
//!   subqueries (they are run once at planning and replaced by their results).
//!
//! A plan is also made afresh every [`REPLAN_AFTER`] executions, so that a plan chosen on
//! the statistics of a small collection does not outlive them for long.
//!
//! [`Catalog::version`]: crate::catalog::Catalog::version

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::query::Column;
use crate::query::exec::memo::PlanMemo;
use crate::query::plan::Node;
use crate::query::statement::{InsertPlan, ModifyPlan};
use crate::query::types::SqlType;

/// Executions of one kept plan before it is made afresh.
pub const REPLAN_AFTER: u32 = 1000;

/// A kept plan, by the kind of statement. (One lives in each [`CachedPlan`], behind an
/// `Arc`: the sizes of the variants do not matter.)
#[allow(clippy::large_enum_variant)]
pub(crate) enum Kept {
    /// A query's optimized plan and its result columns as bound (before optimization).
    Query(Node, Arc<Vec<Column>>),
    /// An INSERT, its source optimized.
    Insert(InsertPlan),
    /// An UPDATE or DELETE, its scan optimized.
    Modify(ModifyPlan),
}

impl Kept {
    /// Whether the plan may be kept inside a transaction: it writes a typed table (whose
    /// columns pending writes do not change) and reads no index (the transaction's
    /// writes take the indexes of what it wrote out of play).
    pub fn fits_transaction(&self) -> bool {
        match self {
            Kept::Query(..) => false,
            Kept::Insert(plan) => plan.fits_transaction(),
            Kept::Modify(plan) => plan.fits_transaction(),
        }
    }
}

/// A plan ready to run, and what it was made under.
pub struct CachedPlan {
    catalog_version: u64,
    settings: BTreeMap<String, String>,
    in_transaction: bool,
    uses: AtomicU32,
    /// The plan.
    pub(crate) plan: Kept,
    /// The parameters' types, to cast the bound values to.
    pub param_types: Vec<SqlType>,
    /// What executions of a query's plan work out from it alone (made on first use,
    /// once the plan is where it stays).
    memo: OnceLock<Arc<PlanMemo>>,
}

impl CachedPlan {
    /// The memo of a query's plan (None for other statements).
    pub(crate) fn memo(&self) -> Option<Arc<PlanMemo>> {
        match &self.plan {
            Kept::Query(plan, _) => Some(
                self.memo
                    .get_or_init(|| Arc::new(PlanMemo::new(plan)))
                    .clone(),
            ),
            _ => None,
        }
    }
}

/// One prepared statement's kept plan, shared by the clones of the statement.
#[derive(Default)]
pub struct PlanCache {
    slot: Mutex<Option<Arc<CachedPlan>>>,
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.slot.lock().is_some();
        f.debug_struct("PlanCache").field("kept", &kept).finish()
    }
}

impl PlanCache {
    /// The kept plan, if it was made at `catalog_version` under `settings`, inside a
    /// transaction or not as `in_transaction` says, and is not due to be made afresh.
    pub fn get(
        &self,
        catalog_version: u64,
        settings: &BTreeMap<String, String>,
        in_transaction: bool,
    ) -> Option<Arc<CachedPlan>> {
        let slot = self.slot.lock();
        let kept = slot.as_ref()?;
        if kept.catalog_version != catalog_version
            || kept.settings != *settings
            || kept.in_transaction != in_transaction
        {
            return None;
        }
        if kept.uses.fetch_add(1, Ordering::Relaxed) >= REPLAN_AFTER {
            return None;
        }
        Some(kept.clone())
    }

    /// Keeps `plan`, made at `catalog_version` under `settings` (inside a transaction
    /// when `in_transaction`), in place of any other. A plan made inside a transaction
    /// is kept only if it [fits one](Kept::fits_transaction).
    pub(crate) fn put(
        &self,
        catalog_version: u64,
        settings: &BTreeMap<String, String>,
        in_transaction: bool,
        plan: Kept,
        param_types: Vec<SqlType>,
    ) {
        if in_transaction && !plan.fits_transaction() {
            return;
        }
        let kept = Arc::new(CachedPlan {
            catalog_version,
            settings: settings.clone(),
            in_transaction,
            uses: AtomicU32::new(0),
            plan,
            param_types,
            memo: OnceLock::new(),
        });
        *self.slot.lock() = Some(kept);
    }

    /// Whether a plan is kept (for tests).
    pub fn is_kept(&self) -> bool {
        self.slot.lock().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Value;
    use crate::query::expr::Expr;

    fn plan() -> Kept {
        let columns = vec![Column::new("x", SqlType::Int8)];
        let node = Node::Values {
            rows: vec![vec![Expr::Literal(Value::Int(1))]],
            columns: columns.clone(),
        };
        Kept::Query(node, Arc::new(columns))
    }

    #[test]
    fn a_kept_plan_serves_only_its_catalog_version_and_settings() {
        let cache = PlanCache::default();
        let mut settings = BTreeMap::new();
        assert!(cache.get(1, &settings, false).is_none());
        cache.put(1, &settings, false, plan(), Vec::new());
        assert!(cache.get(1, &settings, false).is_some());
        assert!(
            cache.get(1, &settings, true).is_none(),
            "made outside a transaction"
        );
        assert!(
            cache.get(2, &settings, false).is_none(),
            "the catalog changed"
        );
        settings.insert("enable_indexscan".into(), "off".into());
        assert!(
            cache.get(1, &settings, false).is_none(),
            "a setting changed"
        );
        cache.put(1, &settings, true, plan(), Vec::new());
        assert!(
            cache.get(1, &settings, true).is_none(),
            "a query made in a transaction is not kept"
        );
    }

    #[test]
    fn a_kept_plan_is_made_afresh_after_its_uses() {
        let cache = PlanCache::default();
        let settings = BTreeMap::new();
        cache.put(7, &settings, false, plan(), Vec::new());
        for _ in 0..REPLAN_AFTER {
            assert!(cache.get(7, &settings, false).is_some());
        }
        assert!(cache.get(7, &settings, false).is_none());
    }
}
