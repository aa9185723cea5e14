//! Row sinks: where a query's rows go as the executor makes them, when the front-end
//! takes them that way ([`crate::Session::execute_into`]), instead of into the
//! [`super::Outcome`].
//!
//! A front-end that writes rows to a client (the wire's data rows) would otherwise get
//! them as one held vector, each row touched again long after it was made: a large
//! answer's rows are out of the processor's cache by then. A sink is handed each row as
//! it leaves the plan's root, conformed to its columns' types ([`Conform`]), and the row
//! is recycled right after.
//!
//! Only the rows of a query statement's own answer go to a sink: the sink is offered
//! the answer's columns first ([`RowSink::start`]) and may decline them (the rows are
//! then collected as usual); a sink takes the rows of one answer at most.

use std::any::Any;
use std::sync::Arc;

use super::{Column, Row, SqlType};
use crate::doc::Value;
use crate::error::Result;

/// Takes the rows of a query's answer as they are made (see the module doc).
pub trait RowSink: Any + Send {
    /// Offered the answer's columns before its first row: whether this sink takes the
    /// rows. False also once the sink took an answer.
    fn start(&mut self, columns: &Arc<Vec<Column>>) -> bool;

    /// The columns a prepared statement about to run was described with: its answer is
    /// converted to them if its own columns differ (a sink that takes only an answer in
    /// these columns gets rows that need no conversion).
    fn described(&mut self, _columns: &Arc<Vec<Column>>) {}

    /// One row of the answer, conformed to the columns. An error ends the statement
    /// with it.
    fn push(&mut self, row: &[Value]) -> Result<()>;
}

/// A row's values made what their columns say: integers in float or numeric columns
/// become floats or numerics (an aggregate or a schemaless field can give an integer
/// where the column is numeric), and values past the columns are dropped.
pub struct Conform {
    width: usize,
    /// Each numeric column, and whether it is a float.
    numeric: Vec<(usize, bool)>,
}

impl Conform {
    pub fn new(columns: &[Column]) -> Conform {
        let numeric = columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c.ty {
                SqlType::Float8 | SqlType::Float4 => Some((i, true)),
                SqlType::Numeric | SqlType::NumericTyped(..) => Some((i, false)),
                _ => None,
            })
            .collect();
        Conform {
            width: columns.len(),
            numeric,
        }
    }

    pub fn apply(&self, row: &mut Row) {
        row.truncate(self.width);
        for &(i, float) in &self.numeric {
            if let Some(v) = row.get_mut(i)
                && let Value::Int(n) = *v
            {
                *v = if float {
                    Value::Float(n as f64)
                } else {
                    Value::Numeric(n.to_string())
                };
            }
        }
    }

    /// [`Conform::apply`] to each row.
    pub fn rows(&self, mut rows: Vec<Row>) -> Vec<Row> {
        for row in &mut rows {
            self.apply(row);
        }
        rows
    }
}
