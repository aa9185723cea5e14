//! Answers encoded as the engine makes them: [`EncodedRows`] is the engine's row sink
//! ([`tissdb::query::sink`]) of an extended-protocol Execute, and of a simple-protocol
//! Query of one statement. Each row is written as a data row while its values are
//! still in the processor's cache, into buffers that data rows share (no allocation
//! per row), and the engine recycles the row at once; the answer is then held as
//! encoded bytes, not as rows of values.
//!
//! The sink takes an answer only in the columns its statement was described with (same
//! count, same types: Describe's for an Execute, the kept template's for a simple
//! query that runs on one; any columns for a simple query that runs as written):
//! otherwise the engine converts the rows to them first, and they come back in the
//! outcome as before.

use std::sync::Arc;

use bytes::BytesMut;
use pgwire::api::results::{FieldFormat, QueryResponse};
use pgwire::error::PgWireError;
use pgwire::messages::data::DataRow;
use tissdb::doc::Value;
use tissdb::error::SqlState;
use tissdb::query::Column;
use tissdb::query::sink::RowSink;

use crate::encode::encode_row_into;
use crate::schema;

/// The first buffer's size; each next one doubles, up to [`MAX_CHUNK`].
const FIRST_CHUNK: usize = 2 << 10;
/// The largest buffer data rows share.
const MAX_CHUNK: usize = 64 << 10;
/// Room under which a buffer is left for a new one before a row is written.
const ROW_ROOM: usize = 256;

/// The data rows of one answer, encoded as the engine makes them (see the module doc).
#[derive(Default)]
pub struct EncodedRows {
    /// The columns the statement was described with (None: any), and each one's
    /// format.
    described: Option<Arc<Vec<Column>>>,
    formats: Vec<FieldFormat>,
    /// Whether every column is text, whatever the columns (the simple protocol).
    text: bool,
    /// The answer's columns, once the sink took it.
    columns: Option<Arc<Vec<Column>>>,
    /// Where the next row is written; rows written are split off it.
    buf: BytesMut,
    next_chunk: usize,
    rows: Vec<DataRow>,
    /// Why a row could not be encoded (the statement ended with it).
    error: Option<PgWireError>,
}

impl EncodedRows {
    /// A sink for an answer in `described` columns, each in `formats[i]`.
    pub fn new(described: Arc<Vec<Column>>, formats: Vec<FieldFormat>) -> EncodedRows {
        EncodedRows {
            described: Some(described),
            formats,
            next_chunk: FIRST_CHUNK,
            ..Default::default()
        }
    }

    /// A sink for an answer of a simple-protocol query: in any columns (or those of the
    /// template it runs on), each in text.
    pub fn text() -> EncodedRows {
        EncodedRows {
            text: true,
            next_chunk: FIRST_CHUNK,
            ..Default::default()
        }
    }

    /// Whether the sink took the answer: its rows are here, not in the outcome.
    pub fn took(&self) -> bool {
        self.columns.is_some()
    }

    /// The error a row's encoding met, if one did.
    pub fn take_error(&mut self) -> Option<PgWireError> {
        self.error.take()
    }

    /// The answer's data rows, in order, after their description in `columns` (None:
    /// it went with Describe).
    pub fn into_response(self, columns: Option<&[Column]>) -> QueryResponse {
        let formats = self.formats;
        let fields = columns.map_or_else(Vec::new, |columns| {
            columns
                .iter()
                .zip(&formats)
                .map(|(column, format)| schema::field(column, *format))
                .collect()
        });
        let rows = self.rows.into_iter().map(Ok);
        QueryResponse::new(Arc::new(fields), futures::stream::iter(rows))
    }
}

impl RowSink for EncodedRows {
    fn start(&mut self, columns: &Arc<Vec<Column>>) -> bool {
        if self.text {
            self.formats = vec![FieldFormat::Text; columns.len()];
        }
        // (An answer of no columns is left to the outcome.)
        let same = !columns.is_empty()
            && columns.len() == self.formats.len()
            && self.described.as_ref().is_none_or(|described| {
                columns.len() == described.len()
                    && columns
                        .iter()
                        .zip(described.iter())
                        .all(|(a, b)| a.ty == b.ty)
            });
        if self.columns.is_some() || !same {
            return false;
        }
        self.columns = Some(columns.clone());
        true
    }

    fn described(&mut self, columns: &Arc<Vec<Column>>) {
        // (An Execute's sink has Describe's columns already.)
        if self.text && self.columns.is_none() {
            self.described = Some(columns.clone());
        }
    }

    fn push(&mut self, row: &[Value]) -> tissdb::Result<()> {
        let Some(columns) = &self.columns else {
            return Err(tissdb::Error::Internal("a row before its columns".into()));
        };
        if self.buf.capacity() - self.buf.len() < ROW_ROOM {
            // The rows split off the old buffer keep it alive.
            self.buf = BytesMut::with_capacity(self.next_chunk);
            self.next_chunk = (self.next_chunk * 2).min(MAX_CHUNK);
        }
        match encode_row_into(&mut self.buf, columns, &self.formats, row) {
            Ok(count) => {
                self.rows.push(DataRow::new(self.buf.split(), count));
                Ok(())
            }
            Err(e) => {
                self.buf.clear();
                self.error = Some(e);
                Err(tissdb::Error::InvalidInput {
                    code: SqlState::INVALID_TEXT_REPRESENTATION,
                    message: "a value could not be sent in its column's type".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tissdb::query::SqlType;

    use super::*;

    fn sink(formats: Vec<FieldFormat>) -> (EncodedRows, Arc<Vec<Column>>) {
        let columns = Arc::new(vec![
            Column::new("n", SqlType::Int4),
            Column::new("t", SqlType::Text),
        ]);
        (EncodedRows::new(columns.clone(), formats), columns)
    }

    #[test]
    fn rows_are_data_rows_in_shared_buffers() {
        let (mut rows, columns) = sink(vec![FieldFormat::Binary, FieldFormat::Text]);
        assert!(rows.start(&columns));
        // One answer per sink.
        assert!(!rows.start(&columns));
        for i in 0..5000 {
            let row = [Value::Int(i), Value::String(format!("r{i}"))];
            rows.push(&row).expect("push");
        }
        assert!(rows.took());
        assert_eq!(rows.rows.len(), 5000);
        let last = rows.rows.last().expect("a row");
        assert_eq!(last.field_count, 2);
        assert_eq!(&last.data[..], b"\0\0\0\x04\0\0\x13\x87\0\0\0\x05r4999");
    }

    #[test]
    fn other_columns_are_declined() {
        let (mut rows, _) = sink(vec![FieldFormat::Binary, FieldFormat::Text]);
        let other = Arc::new(vec![
            Column::new("n", SqlType::Int8),
            Column::new("t", SqlType::Text),
        ]);
        assert!(!rows.start(&other));
        assert!(!rows.start(&Arc::new(vec![Column::new("n", SqlType::Int4)])));
        assert!(!rows.took());
    }

    #[test]
    fn simple_queries_take_any_columns_in_text_or_their_templates() {
        let columns = Arc::new(vec![
            Column::new("n", SqlType::Int4),
            Column::new("f", SqlType::Float8),
        ]);
        let mut rows = EncodedRows::text();
        assert!(rows.start(&columns));
        rows.push(&[Value::Int(7), Value::Float(0.5)])
            .expect("push");
        let response_fields = rows.formats.clone();
        assert_eq!(response_fields, [FieldFormat::Text, FieldFormat::Text]);
        assert_eq!(&rows.rows[0].data[..], b"\0\0\0\x017\0\0\0\x030.5");
        // On a template described with other types: declined (the engine converts).
        let mut rows = EncodedRows::text();
        rows.described(&Arc::new(vec![
            Column::new("n", SqlType::Int8),
            Column::new("f", SqlType::Float8),
        ]));
        assert!(!rows.start(&columns));
        let mut rows = EncodedRows::text();
        rows.described(&columns);
        assert!(rows.start(&columns));
    }

    #[test]
    fn a_value_that_does_not_fit_ends_the_answer_with_22p02() {
        let (mut rows, columns) = sink(vec![FieldFormat::Binary, FieldFormat::Text]);
        assert!(rows.start(&columns));
        rows.push(&[Value::Int(1), Value::Null]).expect("push");
        let e = rows
            .push(&[Value::Float(1.5), Value::Null])
            .expect_err("1.5 is no int4");
        assert_eq!(e.sqlstate().code(), "22P02");
        let Some(PgWireError::UserError(info)) = rows.take_error() else {
            panic!("no user error kept")
        };
        assert_eq!(info.code, "22P02");
        assert!(info.message.contains("1.5"), "{}", info.message);
        assert_eq!(rows.rows.len(), 1);
    }
}
