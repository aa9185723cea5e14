//! What the executor works out from a kept plan alone, kept with it: a prepared
//! statement's executions build their scans from it instead of working it out again
//! (the columns a scan decodes and their shape, the paths a projection leaves to its
//! scan). For a point read that work cost as much as a tenth of the statement.
//!
//! Entries are found by the address of their plan node. The memo is made for one plan,
//! which it never outlives and which does not change while kept (see
//! [`crate::query::plan_cache`]); it holds a slot for each scan and projection of that
//! plan only, so nodes built while the statement runs (a correlated subquery planned
//! for each outer row, say) find no slot and are set up afresh, as without a memo.

use std::sync::{Arc, OnceLock};

use super::scan::ScanSetup;
use crate::error::Result;
use crate::query::expr::Expr;
use crate::query::plan::Node;

/// How a scan is built, with the expressions of a projection over it when the
/// projection left paths to it.
pub struct Prepared {
    /// The scan's setup (None: a projection that leaves nothing to its scan, which is
    /// then built as a plan node of its own).
    pub setup: Option<ScanSetup>,
    /// The projection's expressions as rewritten (None for a scan).
    pub exprs: Option<Vec<Expr>>,
}

/// The memo of one plan.
pub struct PlanMemo {
    slots: Vec<(usize, OnceLock<Arc<Prepared>>)>,
}

fn address(node: &Node) -> usize {
    std::ptr::from_ref(node) as usize
}

impl PlanMemo {
    /// An empty memo for `plan`, which must stay where it is for as long as the memo is
    /// used.
    pub fn new(plan: &Node) -> PlanMemo {
        let mut slots = Vec::new();
        collect(plan, &mut slots);
        PlanMemo { slots }
    }

    /// The entry for `node` (a scan, or a projection over one), worked out by `init`
    /// on first use; `init` alone when `node` is not of the plan.
    pub fn get(
        &self,
        node: &Node,
        init: impl FnOnce() -> Result<Prepared>,
    ) -> Result<Arc<Prepared>> {
        let at = address(node);
        let Some((_, cell)) = self.slots.iter().find(|(a, _)| *a == at) else {
            return init().map(Arc::new);
        };
        if let Some(p) = cell.get() {
            return Ok(p.clone());
        }
        let p = Arc::new(init()?);
        Ok(cell.get_or_init(|| p).clone())
    }
}

/// Slots for the scans of `node` and below, and the projections right over them.
fn collect(node: &Node, slots: &mut Vec<(usize, OnceLock<Arc<Prepared>>)>) {
    match node {
        Node::Scan { .. } => slots.push((address(node), OnceLock::new())),
        Node::Project { input, .. } => {
            if matches!(**input, Node::Scan { .. }) {
                slots.push((address(node), OnceLock::new()));
            }
            collect(input, slots);
        }
        Node::Filter { input, .. }
        | Node::Aggregate { input, .. }
        | Node::Sort { input, .. }
        | Node::Window { input, .. }
        | Node::ProjectSet { input, .. }
        | Node::Limit { input, .. }
        | Node::Distinct { input } => collect(input, slots),
        Node::Join { left, right, .. } | Node::SetOp { left, right, .. } => {
            collect(left, slots);
            collect(right, slots);
        }
        // A lateral's right side is planned again for each left row.
        Node::Lateral { left, .. } => collect(left, slots),
        _ => {}
    }
}
