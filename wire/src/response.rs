//! Engine [`Outcome`]s as pgwire [`Response`]s: rows become a row description and a
//! lazily encoded stream of data rows (pgwire adds `SELECT n`); commands become their
//! engine tag, sent verbatim.

use std::sync::Arc;

use futures::StreamExt;
use pgwire::api::results::{FieldFormat, QueryResponse, Response, Tag};
use tissdb::query::{Column, Outcome, Row};

use crate::encode::encode_row;
use crate::schema;

/// The response to an outcome, each result column in `formats[i]`.
pub fn outcome(
    outcome: Outcome,
    describe: bool,
    formats: impl Fn(usize) -> FieldFormat,
) -> Response {
    match outcome {
        Outcome::Rows {
            columns,
            rows,
            command,
        } => {
            let formats = (0..columns.len()).map(formats).collect();
            let mut response = rows_response(columns, rows, formats, describe);
            // pgwire appends the row count: `INSERT 0 2`, `UPDATE 3`, `SELECT 5`.
            response.set_command_tag(command);
            Response::Query(response)
        }
        Outcome::Command { tag } => command(&tag),
    }
}

/// A command's completion. pgwire prints a [`Tag`] without rows or OID as its command
/// text alone, so the engine's `INSERT 0 3` reaches the client unchanged.
pub fn command(tag: &str) -> Response {
    Response::Execution(Tag::new(tag))
}

/// Rows, encoded one by one as the client reads them, with their description when it
/// is sent with them (`describe`: the simple protocol; the extended one sends it in
/// answer to Describe, and pgwire does not read it here).
pub fn rows_response(
    columns: Arc<Vec<Column>>,
    rows: Vec<Row>,
    formats: Vec<FieldFormat>,
    describe: bool,
) -> QueryResponse {
    let fields = match describe {
        true => columns
            .iter()
            .zip(&formats)
            .map(|(column, format)| schema::field(column, *format))
            .collect(),
        false => Vec::new(),
    };
    let stream = futures::stream::iter(rows).map(move |row| encode_row(&columns, &formats, &row));
    QueryResponse::new(Arc::new(fields), stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwire::messages::response::CommandComplete;

    #[test]
    fn engine_tags_pass_verbatim() {
        for tag in [
            "INSERT 0 3",
            "UPDATE 2",
            "DELETE 1",
            "CREATE TABLE",
            "BEGIN",
            "SET",
        ] {
            let Response::Execution(t) = command(tag) else {
                panic!("not an execution response");
            };
            assert_eq!(CommandComplete::from(t).tag, tag);
        }
    }
}
