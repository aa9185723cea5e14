//! Answers encoded as the engine makes them: [`EncodedRows`] is the engine's row sink
//! ([`tissdb::query::sink`]) of an extended-protocol Execute. Each row is written as a
//! data row while its values are still in the processor's cache, into buffers that
//! data rows share (no allocation per row), and the engine recycles the row at once;
//! the answer is then held as encoded bytes, not as rows of values.
//!
//! The sink takes an answer only in the columns Describe announced (same count, same
//! types): otherwise the engine converts the rows to them first, and they come back in
//! the outcome as before.

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

/// The first buffer's size; each next one doubles, up to [`MAX_CHUNK`].
const FIRST_CHUNK: usize = 2 << 10;
/// The largest buffer data rows share.
const MAX_CHUNK: usize = 64 << 10;
/// Room under which a buffer is left for a new one before a row is written.
const ROW_ROOM: usize = 256;

/// The data rows of one answer, encoded as the engine makes them (see the module doc).
#[derive(Default)]
pub struct EncodedRows {
    /// The columns Describe announced, and each one's format.
    described: Arc<Vec<Column>>,
    formats: Vec<FieldFormat>,
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
            described,
            formats,
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

    /// The answer's data rows, in order (its description went with Describe).
    pub fn into_response(self) -> QueryResponse {
        let rows = self.rows.into_iter().map(Ok);
        QueryResponse::new(Arc::new(Vec::new()), futures::stream::iter(rows))
    }
}

impl RowSink for EncodedRows {
    fn start(&mut self, columns: &Arc<Vec<Column>>) -> bool {
        // (An answer of no columns is left to the outcome.)
        let same = !columns.is_empty()
            && columns.len() == self.described.len()
            && columns.len() == self.formats.len()
            && columns
                .iter()
                .zip(self.described.iter())
                .all(|(a, b)| a.ty == b.ty);
        if self.columns.is_some() || !same {
            return false;
        }
        self.columns = Some(columns.clone());
        true
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
