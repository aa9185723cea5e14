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

use super::ExecContext;
use super::scan::ScanSetup;
use crate::query::Column;
use crate::query::expr::Expr;
use crate::query::plan::Node;

/// A projection that leaves nested paths to its scan, or takes json columns from it
/// encoded: the scan's setup, and the projection's expressions as rewritten (see
/// [`super::scan::pushed_paths`], [`super::scan::encoded_columns`]).
pub struct Pushed {
    pub setup: ScanSetup,
    pub exprs: Vec<Expr>,
    /// Per output of the projection, whether its values come encoded (empty: none do).
    pub encoded_outputs: Vec<bool>,
    /// The result columns with [`Column::json_encoded`] set on those outputs, made from
    /// the statement's columns on first use.
    pub encoded_columns: OnceLock<Arc<Vec<Column>>>,
}

/// What a projection leaves to its scan, worked out for a run that takes json columns
/// encoded (`encode`) or one that does not.
pub struct PushedFor {
    pub encode: bool,
    pub pushed: Option<Pushed>,
}

/// The memo of one plan.
pub struct PlanMemo {
    scans: Slots<ScanSetup>,
    /// Per projection right over a scan, what it leaves to the scan (None: nothing).
    projections: Slots<PushedFor>,
}

/// Entries of one kind, by the address of their node.
struct Slots<T>(Vec<(usize, OnceLock<Arc<T>>)>);

impl<T> Slots<T> {
    fn get(&self, node: &Node, init: impl FnOnce() -> T) -> Arc<T> {
        let at = address(node);
        match self.0.iter().find(|(a, _)| *a == at) {
            Some((_, cell)) => cell.get_or_init(|| Arc::new(init())).clone(),
            None => Arc::new(init()),
        }
    }
}

impl PlanMemo {
    /// An empty memo for `plan`, which must stay where it is for as long as the memo is
    /// used.
    pub fn new(plan: &Node) -> PlanMemo {
        let mut memo = PlanMemo {
            scans: Slots(Vec::new()),
            projections: Slots(Vec::new()),
        };
        memo.collect(plan);
        memo
    }

    /// Slots for the scans of `node` and below, and the projections right over them.
    fn collect(&mut self, node: &Node) {
        match node {
            Node::Scan { .. } => self.scans.0.push((address(node), OnceLock::new())),
            Node::Project { input, .. } => {
                if matches!(**input, Node::Scan { .. }) {
                    self.projections.0.push((address(node), OnceLock::new()));
                }
                self.collect(input);
            }
            Node::Filter { input, .. }
            | Node::Aggregate { input, .. }
            | Node::Sort { input, .. }
            | Node::Window { input, .. }
            | Node::ProjectSet { input, .. }
            | Node::Limit { input, .. }
            | Node::Distinct { input } => self.collect(input),
            Node::Join { left, right, .. } | Node::SetOp { left, right, .. } => {
                self.collect(left);
                self.collect(right);
            }
            // A lateral's right side is planned again for each left row.
            Node::Lateral { left, .. } => self.collect(left),
            _ => {}
        }
    }
}

/// The setup of scan `node`: the memo's, made by `init` on first use; `init`'s alone
/// without a memo or for a node not of the memo's plan.
pub fn scan_setup(
    ctx: &ExecContext,
    node: &Node,
    init: impl FnOnce() -> ScanSetup,
) -> Arc<ScanSetup> {
    match &ctx.memo {
        Some(m) => m.scans.get(node, init),
        None => Arc::new(init()),
    }
}

/// What projection `node` leaves to the scan under it, as [`scan_setup`] keeps it; what
/// the memo holds only if it was worked out for the same `encode` (a kept plan runs one
/// way only; the other is worked out afresh).
pub fn pushed(
    ctx: &ExecContext,
    node: &Node,
    encode: bool,
    init: impl Fn() -> Option<Pushed>,
) -> Arc<PushedFor> {
    let fresh = || PushedFor {
        encode,
        pushed: init(),
    };
    match &ctx.memo {
        Some(m) => {
            let kept = m.projections.get(node, fresh);
            if kept.encode == encode {
                kept
            } else {
                Arc::new(fresh())
            }
        }
        None => Arc::new(fresh()),
    }
}

/// The address a node is known by in a memo and in [`ExecContext::json_encoded_at`].
pub fn address(node: &Node) -> usize {
    std::ptr::from_ref(node) as usize
}
