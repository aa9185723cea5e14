//! COPY between a client and a collection: `COPY t [(cols)] FROM STDIN` and
//! `COPY t [(cols)] | (query) TO STDOUT`, in PostgreSQL's text and CSV formats, with
//! `HEADER`, `DELIMITER`, `NULL`, `QUOTE` and `ESCAPE` (both `WITH (...)` and the
//! legacy `CSV HEADER` spellings).
//!
//! This module owns the COPY formats (the option rules, the record decoder, the
//! de-escaping and the output escaping) and the load itself; the front-end only moves
//! bytes. How a COPY runs:
//!
//! 1. The statement runs like any other ([`run`]). `TO STDOUT` runs its query and leaves a
//!    [`CopyOut`] in the session; `FROM STDIN` checks the table and columns and leaves a
//!    [`CopyIn`] waiting for data. The front-end takes either (see the `impl Session`
//!    below). Only a front-end that said it can move COPY data
//!    ([`Session::allow_client_copy`], the wire protocol) gets them; elsewhere, and as
//!    part of a multi-statement query string, COPY to or from the client is refused.
//!    An inline payload (`COPY t FROM STDIN;` followed by the data and `\.` in the same
//!    string, as in a dump) is loaded at once, through any front-end.
//! 2. Each chunk of data ([`Session::copy_data`]) is cut into records, each record into
//!    fields, and each row becomes the document it will store: typed by the lossless
//!    inference of [`crate::doc::text::infer_scalar`] in a schemaless collection, by the
//!    declared column types (PostgreSQL's input functions, defaults and NOT NULL) in a
//!    table. A bad row fails the COPY at once, naming its line (PostgreSQL's
//!    `COPY t, line 3, column b: "x"` context). Ids repeated within the input fail too.
//!    Rows are kept encoded (the storage's binary document form) until the end, or,
//!    in a bulk load (below), written into new segment files that nothing reads yet.
//! 3. At the end ([`Session::copy_done`]) the ids are checked against the stored
//!    documents under their key locks, and only then is anything written. So a COPY that
//!    fails for its data (a bad value, a missing column, a duplicate key) stores nothing.
//!
//! # Atomicity of large loads
//!
//! An autocommit COPY into a table with no secondary index and no foreign key is a bulk
//! load ([`crate::storage::bulk`]): its rows are encoded into segment blocks on another
//! thread while the input is still being parsed, and the finished, fsynced segment files
//! are installed by one manifest edit once every row is validated and its id checked.
//! It writes no WAL and no memtable, and it is atomic under a crash too: the manifest
//! names all of its rows or none. A COPY that fails (or whose connection goes) removes
//! its files.
//!
//! Inside a transaction block the rows join the transaction's writes (and its
//! `max_transaction_size`). Any other autocommit COPY, once every row is validated,
//! writes its rows in WAL batches of about [`WRITE_BATCH_BYTES`], each batch atomic,
//! holding the key locks of all of them until the last is written: other sessions never
//! see a row the COPY would reject, nor write an id the COPY is about to. A crash (or a
//! failed disk write) in the middle of the writing phase leaves a prefix of the batches
//! stored and none of the rest: such a COPY is atomic for every error it can detect from
//! its input, not under a crash. Collections with a unique secondary index are written in a single
//! batch, since the unique check runs per batch.
//!
//! The input is limited to `max_copy_size` bytes (54000 beyond), which bounds the memory
//! a COPY holds.

use std::collections::HashSet;

use sqlparser::ast;
use tissdb_dialect::{TissStatement, sqlparser};

use crate::catalog::{Collection, EncodedInsert, Kind};
use crate::doc::{Object, Value, binary, text};
use crate::error::{Error, Result, SqlState};
use crate::query::binder::{self, ident, unsupported};
use crate::query::statement::{self, duplicate_key};
use crate::query::{Column, Outcome, Row, SqlType};
use crate::session::Session;
use crate::storage::bulk::BulkLoad;
use crate::storage::keys;

/// `22P04`: the COPY data is not in the format the options describe.
pub const BAD_COPY_FILE_FORMAT: SqlState = SqlState("22P04");
/// `22021`: bytes that are not UTF-8.
pub const CHARACTER_NOT_IN_REPERTOIRE: SqlState = SqlState("22021");
/// `57014`: the client ended the COPY with CopyFail.
pub const QUERY_CANCELED: SqlState = SqlState("57014");
const DUPLICATE_COLUMN: SqlState = SqlState("42701");

/// Bytes of encoded documents an autocommit COPY writes per WAL batch.
pub const WRITE_BATCH_BYTES: usize = 8 << 20;

/// The format of COPY data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
}

/// The options of one COPY, defaults applied and checked as PostgreSQL checks them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub format: Format,
    pub delimiter: u8,
    /// The text that stands for NULL (`\N` in text, the empty string in CSV).
    pub null: String,
    pub header: bool,
    /// CSV only.
    pub quote: u8,
    /// CSV only; the quote character unless given.
    pub escape: u8,
}

fn one_byte(c: char, what: &str) -> Result<u8> {
    if c.is_ascii() {
        Ok(c as u8)
    } else {
        Err(Error::invalid(
            SqlState::FEATURE_NOT_SUPPORTED,
            format!("COPY {what} must be a single one-byte character"),
        ))
    }
}

fn bad_option(message: impl Into<String>) -> Error {
    Error::invalid(SqlState::INVALID_PARAMETER_VALUE, message)
}

impl Options {
    /// The options of a COPY statement, `WITH (...)` and legacy ones alike.
    pub fn from_ast(options: &[ast::CopyOption], legacy: &[ast::CopyLegacyOption]) -> Result<Self> {
        let mut format = None;
        let mut delimiter = None;
        let mut null = None;
        let mut header = false;
        let mut quote = None;
        let mut escape = None;
        let binary_unsupported = || {
            Error::invalid(
                SqlState::FEATURE_NOT_SUPPORTED,
                "COPY BINARY is not supported",
            )
        };
        for o in options {
            match o {
                ast::CopyOption::Format(name) => {
                    format = Some(match name.value.to_ascii_lowercase().as_str() {
                        "text" => Format::Text,
                        "csv" => Format::Csv,
                        "binary" => return Err(binary_unsupported()),
                        other => {
                            return Err(bad_option(format!(
                                "COPY format \"{other}\" not recognized"
                            )));
                        }
                    })
                }
                ast::CopyOption::Delimiter(c) => delimiter = Some(one_byte(*c, "delimiter")?),
                ast::CopyOption::Null(s) => null = Some(s.clone()),
                ast::CopyOption::Header(h) => header = *h,
                ast::CopyOption::Quote(c) => quote = Some(one_byte(*c, "quote")?),
                ast::CopyOption::Escape(c) => escape = Some(one_byte(*c, "escape")?),
                ast::CopyOption::Freeze(_) => {}
                ast::CopyOption::Encoding(e) => check_encoding(e)?,
                other => return Err(unsupported(format!("COPY option {other}"))),
            }
        }
        for o in legacy {
            match o {
                ast::CopyLegacyOption::Binary => return Err(binary_unsupported()),
                ast::CopyLegacyOption::Csv(csv) => {
                    format = Some(Format::Csv);
                    for c in csv {
                        match c {
                            ast::CopyLegacyCsvOption::Header => header = true,
                            ast::CopyLegacyCsvOption::Quote(q) => {
                                quote = Some(one_byte(*q, "quote")?)
                            }
                            ast::CopyLegacyCsvOption::Escape(e) => {
                                escape = Some(one_byte(*e, "escape")?)
                            }
                            other => return Err(unsupported(format!("COPY option {other}"))),
                        }
                    }
                }
                ast::CopyLegacyOption::Delimiter(c) => delimiter = Some(one_byte(*c, "delimiter")?),
                ast::CopyLegacyOption::Null(s) => null = Some(s.clone()),
                ast::CopyLegacyOption::Header => header = true,
                other => return Err(unsupported(format!("COPY option {other}"))),
            }
        }
        let format = format.unwrap_or(Format::Text);
        let csv = format == Format::Csv;
        if !csv && quote.is_some() {
            return Err(unsupported("COPY QUOTE outside CSV mode"));
        }
        if !csv && escape.is_some() {
            return Err(unsupported("COPY ESCAPE outside CSV mode"));
        }
        let delimiter = delimiter.unwrap_or(if csv { b',' } else { b'\t' });
        let null = null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() });
        let quote = quote.unwrap_or(b'"');
        let escape = escape.unwrap_or(quote);
        if matches!(delimiter, b'\r' | b'\n') {
            return Err(bad_option(
                "COPY delimiter cannot be newline or carriage return",
            ));
        }
        if null.contains(['\r', '\n']) {
            return Err(bad_option(
                "COPY null representation cannot use newline or carriage return",
            ));
        }
        if !csv && b"\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(&delimiter) {
            return Err(bad_option(format!(
                "COPY delimiter cannot be \"{}\"",
                delimiter as char
            )));
        }
        if csv && delimiter == quote {
            return Err(bad_option("COPY delimiter and quote must be different"));
        }
        if null.as_bytes().contains(&delimiter) {
            return Err(bad_option(
                "COPY delimiter must not appear in the NULL specification",
            ));
        }
        Ok(Options {
            format,
            delimiter,
            null,
            header,
            quote,
            escape,
        })
    }
}

fn check_encoding(e: &str) -> Result<()> {
    let norm: String = e
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    if norm == "utf8" || norm == "unicode" {
        Ok(())
    } else {
        Err(unsupported(format!(
            "COPY ENCODING '{e}' (only UTF8 is supported)"
        )))
    }
}

// ---- errors ---------------------------------------------------------------------------

/// A COPY error and where in the data it happened, as PostgreSQL's CONTEXT field says
/// it: `COPY t, line 3, column b: "x"`.
#[derive(Debug)]
pub struct CopyError {
    pub error: Error,
    pub context: Option<String>,
}

impl From<Error> for CopyError {
    fn from(error: Error) -> Self {
        CopyError {
            error,
            context: None,
        }
    }
}

impl CopyError {
    /// The error alone, its context folded into the message (for front-ends without a
    /// context field).
    pub fn into_error(self) -> Error {
        let Some(context) = self.context else {
            return self.error;
        };
        let message = format!("{} (context: {context})", self.error);
        match self.error {
            Error::InvalidInput { code, .. } => Error::InvalidInput { code, message },
            Error::NotFound { code, .. } => Error::NotFound { code, message },
            Error::Conflict { code, .. } => Error::Conflict { code, message },
            Error::LimitExceeded { code, .. } => Error::LimitExceeded { code, message },
            Error::Violation { code, more, .. } => Error::Violation {
                code,
                message,
                more,
            },
            other => other,
        }
    }
}

fn format_error(message: impl Into<String>) -> Error {
    Error::invalid(BAD_COPY_FILE_FORMAT, message)
}

// ---- the statement ------------------------------------------------------------------------

/// What a COPY to or from the client leaves in the session for the front-end.
#[derive(Default)]
pub struct ClientCopy {
    /// The front-end can move COPY data ([`Session::allow_client_copy`]).
    allowed: bool,
    copy_in: Option<Box<CopyIn>>,
    copy_out: Option<CopyOut>,
}

/// True for a COPY that moves data to or from the client through the protocol (not an
/// inline payload): it must be the only statement of its query string.
fn uses_client(stmt: &statement::Statement) -> bool {
    matches!(stmt, TissStatement::Sql(s) if matches!(
        s.as_ref(),
        ast::Statement::Copy { target: ast::CopyTarget::Stdin | ast::CopyTarget::Stdout, payload: None, .. }
    ))
}

/// Refuses a query string that holds a COPY to or from the client among other
/// statements (the data would have to interleave with their results).
pub fn check_batch(statements: &[statement::Statement]) -> Result<()> {
    if statements.len() > 1 && statements.iter().any(uses_client) {
        return Err(unsupported(
            "COPY FROM STDIN or TO STDOUT together with other statements in one query string",
        ));
    }
    Ok(())
}

/// Runs a COPY statement (see the module doc).
pub fn run(session: &mut Session, stmt: &ast::Statement) -> Result<Outcome> {
    let ast::Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        payload,
    } = stmt
    else {
        return Err(Error::Internal("copy::run on another statement".into()));
    };
    let options = Options::from_ast(options, legacy_options)?;
    match target {
        ast::CopyTarget::Stdin | ast::CopyTarget::Stdout => {}
        ast::CopyTarget::File { .. } | ast::CopyTarget::Program { .. } => {
            return Err(Error::invalid(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!(
                    "COPY {} a server file or program is not supported; use COPY ... {} or psql's \\copy",
                    if *to { "to" } else { "from" },
                    if *to { "TO STDOUT" } else { "FROM STDIN" },
                ),
            ));
        }
    }
    if *to {
        let out = copy_to(session, source, options)?;
        if !session.copy.allowed {
            return Err(client_copy_unavailable());
        }
        session.copy.copy_out = Some(out);
        return Ok(Outcome::command("COPY"));
    }
    if session.transaction_read_only() {
        return Err(Error::invalid(
            SqlState::READ_ONLY_SQL_TRANSACTION,
            "cannot execute COPY FROM in a read-only transaction",
        ));
    }
    let ast::CopySource::Table {
        table_name,
        columns,
    } = source
    else {
        return Err(unsupported("COPY (query) FROM"));
    };
    let copy_in = CopyIn::new(session, table_name, columns, options)?;
    match payload {
        Some(p) => {
            let mut copy_in = copy_in;
            copy_in
                .feed(session, p.data.as_bytes())
                .and_then(|()| copy_in.finish(session))
                .map(|n| Outcome::command(format!("COPY {n}")))
                .map_err(CopyError::into_error)
        }
        None if session.copy.allowed => {
            session.copy.copy_in = Some(Box::new(copy_in));
            Ok(Outcome::command("COPY"))
        }
        None => Err(client_copy_unavailable()),
    }
}

fn client_copy_unavailable() -> Error {
    Error::invalid(
        SqlState::FEATURE_NOT_SUPPORTED,
        "COPY FROM STDIN and COPY TO STDOUT need the PostgreSQL wire protocol",
    )
}

/// The engine's side of COPY for front-ends.
impl Session {
    /// Says that this session's front-end moves COPY data (the wire protocol does): a
    /// `COPY ... FROM STDIN` then waits for [`Session::copy_data`] and a
    /// `COPY ... TO STDOUT` leaves its rows for [`Session::take_copy_out`].
    pub fn allow_client_copy(&mut self) {
        self.copy.allowed = true;
    }

    /// The rows of the `COPY ... TO STDOUT` the last statement ran, to send.
    pub fn take_copy_out(&mut self) -> Option<CopyOut> {
        self.copy.copy_out.take()
    }

    /// When the last statement was a `COPY ... FROM STDIN`: the number of columns it
    /// expects (for CopyInResponse). It then waits for data.
    pub fn copy_in_columns(&self) -> Option<usize> {
        self.copy.copy_in.as_ref().map(|c| c.column_count())
    }

    /// A chunk of the data of the waiting `COPY ... FROM STDIN`. On an error the COPY is
    /// over (nothing stored) and later chunks are refused.
    pub fn copy_data(&mut self, data: &[u8]) -> std::result::Result<(), CopyError> {
        let Some(mut c) = self.copy.copy_in.take() else {
            return Err(no_copy_in().into());
        };
        match c.feed(self, data) {
            Ok(()) => {
                self.copy.copy_in = Some(c);
                Ok(())
            }
            Err(e) => {
                self.fail_transaction();
                Err(e)
            }
        }
    }

    /// The end of the data: validates and stores the rows; returns how many.
    pub fn copy_done(&mut self) -> std::result::Result<u64, CopyError> {
        let Some(c) = self.copy.copy_in.take() else {
            return Err(no_copy_in().into());
        };
        let out = c.finish(self);
        if out.is_err() {
            self.fail_transaction();
        }
        out
    }

    /// The client gave up (CopyFail): nothing is stored; the error to report.
    pub fn copy_fail(&mut self, message: &str) -> Error {
        self.copy.copy_in = None;
        self.fail_transaction();
        Error::invalid(QUERY_CANCELED, format!("COPY from stdin failed: {message}"))
    }
}

fn no_copy_in() -> Error {
    Error::invalid(
        SqlState("08P01"),
        "unexpected COPY data: no COPY FROM STDIN is in progress",
    )
}

// ---- COPY TO ----------------------------------------------------------------------------

/// A COPY's column list: no name twice, and (in a table) only declared columns.
fn check_columns(collection: &Collection, named: &[String]) -> Result<()> {
    let all = collection.sql_columns();
    for (i, t) in named.iter().enumerate() {
        if named[..i].contains(t) {
            return Err(Error::invalid(
                DUPLICATE_COLUMN,
                format!("column \"{t}\" specified more than once"),
            ));
        }
        if collection.kind == Kind::Table && !all.iter().any(|(n, _)| n == t) {
            return Err(Error::invalid(
                binder::UNDEFINED_COLUMN,
                format!(
                    "column \"{t}\" of relation \"{}\" does not exist",
                    collection.name
                ),
            ));
        }
    }
    Ok(())
}

/// `SELECT * FROM name` or `SELECT cols FROM name`, as an AST (no SQL text is built).
fn table_query(name: &ast::ObjectName, columns: &[ast::Ident]) -> Result<ast::Query> {
    let template = tissdb_dialect::parse("SELECT * FROM t")
        .map_err(|e| Error::Internal(format!("COPY template: {e}")))?;
    let Some(TissStatement::Sql(s)) = template.into_iter().next() else {
        return Err(Error::Internal("COPY template".into()));
    };
    let ast::Statement::Query(mut q) = *s else {
        return Err(Error::Internal("COPY template".into()));
    };
    let ast::SetExpr::Select(sel) = q.body.as_mut() else {
        return Err(Error::Internal("COPY template".into()));
    };
    if let Some(ast::TableFactor::Table { name: n, .. }) =
        sel.from.first_mut().map(|f| &mut f.relation)
    {
        *n = name.clone();
    }
    if !columns.is_empty() {
        sel.projection = columns
            .iter()
            .map(|c| ast::SelectItem::UnnamedExpr(ast::Expr::Identifier(c.clone())))
            .collect();
    }
    Ok(*q)
}

fn copy_to(session: &Session, source: &ast::CopySource, options: Options) -> Result<CopyOut> {
    let query = match source {
        ast::CopySource::Query(q) => (**q).clone(),
        ast::CopySource::Table {
            table_name,
            columns,
        } => {
            let db = session.database().clone();
            let collection = statement::session_binder(session, &db, &[]).collection(table_name)?;
            check_columns(&collection, &columns.iter().map(ident).collect::<Vec<_>>())?;
            table_query(table_name, columns)?
        }
    };
    let db = session.database().clone();
    let mut binder = statement::session_binder(session, &db, &[]);
    let node = binder.query(&query)?;
    match statement::run_query(node, Vec::new(), session)? {
        Outcome::Rows { columns, rows, .. } => Ok(CopyOut {
            columns: std::sync::Arc::unwrap_or_clone(columns),
            rows: rows.into_iter(),
            options,
        }),
        Outcome::Command { .. } => Err(Error::Internal("COPY query returned no rows".into())),
    }
}

/// The rows of a `COPY ... TO STDOUT`, encoded one line at a time as they are sent.
pub struct CopyOut {
    columns: Vec<Column>,
    rows: std::vec::IntoIter<Row>,
    options: Options,
}

impl CopyOut {
    pub fn column_count(&self) -> usize {
        self.columns.len()
    }

    /// The header line (column names), when HEADER was asked for.
    pub fn header(&self) -> Option<Vec<u8>> {
        if !self.options.header {
            return None;
        }
        let mut out = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(self.options.delimiter);
            }
            self.put_field(&mut out, &c.name);
        }
        out.push(b'\n');
        Some(out)
    }

    fn put_field(&self, out: &mut Vec<u8>, s: &str) {
        match self.options.format {
            Format::Text => escape_text(out, s, self.options.delimiter),
            Format::Csv => quote_csv(out, s, &self.options),
        }
    }
}

impl Iterator for CopyOut {
    type Item = Vec<u8>;

    /// The next row as one line of COPY data.
    fn next(&mut self) -> Option<Vec<u8>> {
        let row = self.rows.next()?;
        let mut out = Vec::with_capacity(16 * row.len());
        for (i, (c, v)) in self.columns.iter().zip(&row).enumerate() {
            if i > 0 {
                out.push(self.options.delimiter);
            }
            match c.ty.format_text(v) {
                None => out.extend_from_slice(self.options.null.as_bytes()),
                Some(t) => self.put_field(&mut out, &t),
            }
        }
        out.push(b'\n');
        Some(out)
    }
}

/// PostgreSQL's text-format escaping: backslash sequences for backslash, the
/// delimiter and the control characters that have one.
fn escape_text(out: &mut Vec<u8>, s: &str, delimiter: u8) {
    for &b in s.as_bytes() {
        let esc = match b {
            b'\\' => Some(b'\\'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            0x08 => Some(b'b'),
            0x0c => Some(b'f'),
            0x0b => Some(b'v'),
            _ if b == delimiter => Some(b),
            _ => None,
        };
        match esc {
            Some(e) => out.extend_from_slice(&[b'\\', e]),
            None => out.push(b),
        }
    }
}

/// PostgreSQL's CSV quoting: a value is quoted when it holds the delimiter, the quote,
/// a line break, equals the NULL text or is `\.`; inside quotes the quote and escape
/// characters are preceded by the escape character.
fn quote_csv(out: &mut Vec<u8>, s: &str, o: &Options) {
    let bytes = s.as_bytes();
    let needs = s == o.null
        || s == "\\."
        || bytes
            .iter()
            .any(|&b| b == o.delimiter || b == o.quote || b == b'\n' || b == b'\r');
    if !needs {
        out.extend_from_slice(bytes);
        return;
    }
    out.push(o.quote);
    for &b in bytes {
        if b == o.quote || b == o.escape {
            out.push(o.escape);
        }
        out.push(b);
    }
    out.push(o.quote);
}

// ---- COPY FROM: records and fields ---------------------------------------------------

/// Cuts COPY data into records and records into fields.
struct Decoder {
    options: Options,
    /// CSV: where the search for the current record's end resumes, and whether that
    /// point is inside quotes.
    scan: usize,
    in_quote: bool,
    /// Text: how far the current record has been searched for its newline.
    text_scan: usize,
    /// The end-of-data marker `\.` was seen: the rest is ignored.
    ended: bool,
    /// Reused field buffer.
    field: Vec<u8>,
    /// Strings of the previous record's fields, reused for the next record's.
    spare: Vec<String>,
}

impl Decoder {
    fn new(options: Options) -> Self {
        Decoder {
            options,
            scan: 0,
            in_quote: false,
            text_scan: 0,
            ended: false,
            field: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// The length of the next complete record at the start of `buf` (without its line
    /// break) and the bytes it takes with the line break, or None if it is not complete
    /// yet. The search resumes where the last one for the same record stopped, so `buf`
    /// must start at the same record each time until one is found.
    fn next_record(&mut self, buf: &[u8]) -> Option<(usize, usize)> {
        match self.options.format {
            Format::Text => {
                let mut from = self.text_scan;
                loop {
                    let Some(at) = memchr(b'\n', &buf[from..]) else {
                        self.text_scan = buf.len();
                        return None;
                    };
                    let p = from + at;
                    // A newline after an odd number of backslashes is data.
                    let backslashes = buf[..p].iter().rev().take_while(|&&b| b == b'\\').count();
                    if backslashes % 2 == 1 {
                        from = p + 1;
                        continue;
                    }
                    self.text_scan = 0;
                    let len = if p > 0 && buf[p - 1] == b'\r' {
                        p - 1
                    } else {
                        p
                    };
                    return Some((len, p + 1));
                }
            }
            Format::Csv => {
                let (quote, escape) = (self.options.quote, self.options.escape);
                let mut i = self.scan;
                let n = buf.len();
                while i < n {
                    let b = buf[i];
                    if self.in_quote {
                        if b == escape && escape != quote && i + 1 < n {
                            let next = buf[i + 1];
                            if next == quote || next == escape {
                                i += 2;
                                continue;
                            }
                        } else if b == escape && escape != quote && i + 1 == n {
                            // Wait for the byte after the escape.
                            break;
                        }
                        if b == quote {
                            self.in_quote = false;
                        }
                    } else if b == quote {
                        self.in_quote = true;
                    } else if b == b'\n' {
                        self.scan = 0;
                        let len = if i > 0 && buf[i - 1] == b'\r' {
                            i - 1
                        } else {
                            i
                        };
                        return Some((len, i + 1));
                    }
                    i += 1;
                }
                self.scan = i;
                None
            }
        }
    }

    /// Splits `record` into fields (None for NULL).
    fn fields(
        &mut self,
        record: &[u8],
        out: &mut Vec<Option<String>>,
    ) -> std::result::Result<(), Error> {
        self.spare.extend(out.drain(..).flatten());
        match self.options.format {
            Format::Text => self.text_fields(record, out),
            Format::Csv => self.csv_fields(record, out),
        }
    }

    fn text_fields(&mut self, rec: &[u8], out: &mut Vec<Option<String>>) -> Result<()> {
        let delim = self.options.delimiter;
        let null = self.options.null.as_bytes();
        let n = rec.len();
        let mut i = 0;
        loop {
            let start = i;
            self.field.clear();
            while i < n && rec[i] != delim {
                let b = rec[i];
                if b != b'\\' || i + 1 == n {
                    self.field.push(b);
                    i += 1;
                    continue;
                }
                let c = rec[i + 1];
                i += 2;
                match c {
                    b'b' => self.field.push(0x08),
                    b'f' => self.field.push(0x0c),
                    b'n' => self.field.push(b'\n'),
                    b'r' => self.field.push(b'\r'),
                    b't' => self.field.push(b'\t'),
                    b'v' => self.field.push(0x0b),
                    b'0'..=b'7' => {
                        let mut v = u32::from(c - b'0');
                        for _ in 0..2 {
                            match rec.get(i) {
                                Some(&d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        self.field.push((v & 0xff) as u8);
                    }
                    b'x' if rec.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                        let mut v = 0u32;
                        for _ in 0..2 {
                            match rec.get(i) {
                                Some(d) if d.is_ascii_hexdigit() => {
                                    v = v * 16 + (*d as char).to_digit(16).unwrap_or(0);
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        self.field.push(v as u8);
                    }
                    other => self.field.push(other),
                }
            }
            if &rec[start..i] == null {
                out.push(None);
            } else {
                out.push(Some(field_text(&self.field, &mut self.spare)?));
            }
            if i >= n {
                return Ok(());
            }
            i += 1; // the delimiter
        }
    }

    fn csv_fields(&mut self, rec: &[u8], out: &mut Vec<Option<String>>) -> Result<()> {
        let o = &self.options;
        let (delim, quote, escape) = (o.delimiter, o.quote, o.escape);
        let null = o.null.as_bytes();
        let n = rec.len();
        let mut i = 0;
        loop {
            let start = i;
            self.field.clear();
            let mut quoted = false;
            let mut in_quote = false;
            // An unquoted field (the usual one) runs to the next delimiter: copied whole.
            let plain_end = rec[i..]
                .iter()
                .position(|&b| b == delim || b == quote)
                .map_or(n, |p| i + p);
            if plain_end == n || rec[plain_end] == delim {
                self.field.extend_from_slice(&rec[i..plain_end]);
                i = plain_end;
            }
            while i < n {
                let b = rec[i];
                if in_quote {
                    if b == escape && i + 1 < n && (rec[i + 1] == quote || rec[i + 1] == escape) {
                        // With escape == quote, a doubled quote is a quote.
                        if escape != quote || rec[i + 1] == quote {
                            self.field.push(rec[i + 1]);
                            i += 2;
                            continue;
                        }
                    }
                    if b == quote {
                        in_quote = false;
                    } else {
                        self.field.push(b);
                    }
                } else if b == delim {
                    break;
                } else if b == quote {
                    in_quote = true;
                    quoted = true;
                } else {
                    self.field.push(b);
                }
                i += 1;
            }
            if in_quote {
                return Err(format_error("unterminated CSV quoted field"));
            }
            if !quoted && &rec[start..i] == null {
                out.push(None);
            } else {
                out.push(Some(field_text(&self.field, &mut self.spare)?));
            }
            if i >= n {
                return Ok(());
            }
            i += 1;
        }
    }
}

/// A decoded field as text, in a string of an earlier record if one is `spare`.
fn field_text(field: &[u8], spare: &mut Vec<String>) -> Result<String> {
    let text = std::str::from_utf8(field).map_err(|e| not_utf8(field, e))?;
    let mut out = spare.pop().unwrap_or_default();
    out.clear();
    out.push_str(text);
    Ok(out)
}

/// 22021 for bytes that are not UTF-8, naming the first bad ones as PostgreSQL does.
fn not_utf8(bytes: &[u8], e: std::str::Utf8Error) -> Error {
    let at = e.valid_up_to();
    let bad: Vec<String> = bytes[at..]
        .iter()
        .take(2)
        .map(|b| format!("0x{b:02x}"))
        .collect();
    Error::invalid(
        CHARACTER_NOT_IN_REPERTOIRE,
        format!(
            "invalid byte sequence for encoding \"UTF8\": {}",
            bad.join(" ")
        ),
    )
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

// ---- COPY FROM: rows to documents --------------------------------------------------------

/// One validated row, kept encoded until it is written.
struct Loaded {
    id: String,
    /// The document in the storage's binary form.
    doc: Vec<u8>,
    line: u64,
    /// The id came from the data (so it may collide with a stored one), rather than
    /// being generated.
    given: bool,
}

/// A `COPY ... FROM STDIN` in progress: the target, the decoder and the rows so far.
pub struct CopyIn {
    collection: Collection,
    /// The columns (fields) the data holds, in order; for a schemaless collection with a
    /// header and no column list, known once the header is read.
    targets: Vec<String>,
    /// Declared types of `targets` (tables).
    types: Vec<SqlType>,
    /// For each column of a table, the position of its value among `targets`.
    sources: Vec<Option<usize>>,
    /// Targets come from the header line.
    targets_from_header: bool,
    decoder: Decoder,
    /// Data received and not yet cut into records (an incomplete record).
    pending: Vec<u8>,
    /// Records read so far (the line number PostgreSQL reports).
    line: u64,
    received: u64,
    max_size: u64,
    rows: Vec<Loaded>,
    /// The xxh3 hashes of the ids given so far, once they stopped rising (see
    /// [`CopyIn::maybe_seen`]): a repeated hash is a repeated id once the rows kept
    /// confirm it (holding the ids again was a tenth of a 1M-row load).
    ids: HashSet<u64, foldhash::fast::FixedState>,
    /// While every id given so far rose over the one before, the last of them.
    rising: Option<String>,
    /// When the statement ran (for the timing line in the log).
    started: std::time::Instant,
    fields: Vec<Option<String>>,
    /// Rows go to new segment files as they are validated, installed at the end (see
    /// the module doc): outside a transaction block, into a table that needs nothing
    /// but the rows' bytes ([`crate::catalog::Catalog::bulk_loadable`]).
    bulk_allowed: bool,
    /// The bulk load, started with the first row.
    bulk: Option<BulkLoad>,
    /// The ids of the rows gone to the bulk load (they are not in `rows`).
    bulk_ids: PackedIds,
}

/// Ids of a bulk load's rows, packed into one buffer: a row's id, line and key are all a
/// COPY needs of it at the end, and a million rows kept one by one (an id string and a
/// row each) cost a tenth of the load in fresh memory.
#[derive(Default)]
struct PackedIds {
    text: String,
    ends: Vec<usize>,
    /// The line of the first row; each row after it is on the next (one record each).
    first_line: u64,
}

impl PackedIds {
    fn push(&mut self, id: &str, line: u64) {
        if self.ends.is_empty() {
            self.first_line = line;
        }
        self.text.push_str(id);
        self.ends.push(self.text.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Each row's id, in input order.
    fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| self.text.get(start..end).unwrap_or_default())
    }
}

impl CopyIn {
    fn new(
        session: &Session,
        name: &ast::ObjectName,
        columns: &[ast::Ident],
        options: Options,
    ) -> Result<Self> {
        let db = session.database().clone();
        let binder = statement::session_binder(session, &db, &[]);
        let collection = binder.collection(name)?;
        let all = collection.sql_columns();
        let named: Vec<String> = columns.iter().map(ident).collect();
        check_columns(&collection, &named)?;
        let targets_from_header =
            named.is_empty() && collection.kind == Kind::Schemaless && options.header;
        let targets = if named.is_empty() {
            all.iter().map(|(n, _)| n.clone()).collect()
        } else {
            named
        };
        let types = targets
            .iter()
            .map(|t| {
                all.iter()
                    .find(|(n, _)| n == t)
                    .map_or(SqlType::Unknown, |(_, ty)| ty.clone())
            })
            .collect();
        let sources = statement::value_sources(&collection, &targets);
        Ok(CopyIn {
            sources,
            targets,
            types,
            targets_from_header,
            decoder: Decoder::new(options),
            pending: Vec::new(),
            line: 0,
            received: 0,
            max_size: session.database().config().max_copy_size,
            rows: Vec::new(),
            ids: HashSet::default(),
            rising: Some(String::new()),
            started: std::time::Instant::now(),
            fields: Vec::new(),
            bulk_allowed: !session.in_transaction()
                && crate::catalog::Catalog::bulk_loadable(&collection),
            bulk: None,
            bulk_ids: PackedIds::default(),
            collection,
        })
    }

    /// The number of columns the data should hold (as known before any data).
    pub fn column_count(&self) -> usize {
        self.targets.len()
    }

    fn context(&self) -> String {
        format!("COPY {}, line {}", self.collection.name, self.line)
    }

    fn at_line(&self, error: Error) -> CopyError {
        CopyError {
            error,
            context: Some(self.context()),
        }
    }

    /// Takes a chunk of data: every complete record in it becomes a validated row.
    fn feed(&mut self, session: &Session, data: &[u8]) -> std::result::Result<(), CopyError> {
        self.received += data.len() as u64;
        if self.received > self.max_size {
            return Err(Error::limit(format!(
                "COPY data exceeds max_copy_size ({} bytes); load it in parts or raise the setting",
                self.max_size
            ))
            .into());
        }
        if self.decoder.ended {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(data);
        let mut consumed = 0;
        let mut result = Ok(());
        while let Some((len, taken)) = self.decoder.next_record(&buf[consumed..]) {
            let record = &buf[consumed..consumed + len];
            consumed += taken;
            if let Err(e) = self.record(session, record) {
                result = Err(e);
                break;
            }
            if self.decoder.ended {
                consumed = buf.len();
                break;
            }
        }
        buf.drain(..consumed);
        self.pending = buf;
        result
    }

    /// The end of the data: the last record may lack its line break.
    fn finish_input(&mut self, session: &Session) -> std::result::Result<(), CopyError> {
        if self.decoder.ended || self.pending.is_empty() {
            return Ok(());
        }
        let tail = std::mem::take(&mut self.pending);
        if self.decoder.options.format == Format::Csv {
            // Brings the quote state up to the end of the tail (it holds no line break
            // outside quotes, or feed would have taken it).
            let _ = self.decoder.next_record(&tail);
            if self.decoder.in_quote {
                self.line += 1;
                return Err(self.at_line(format_error("unterminated CSV quoted field")));
            }
        }
        let len = if tail.ends_with(b"\r") {
            tail.len() - 1
        } else {
            tail.len()
        };
        self.record(session, &tail[..len])
    }

    /// One record: the header, the end marker, or a row.
    fn record(&mut self, session: &Session, rec: &[u8]) -> std::result::Result<(), CopyError> {
        self.line += 1;
        if rec == b"\\." {
            self.decoder.ended = true;
            return Ok(());
        }
        let mut fields = std::mem::take(&mut self.fields);
        let out = self.record_fields(session, rec, &mut fields);
        self.fields = fields;
        out
    }

    fn record_fields(
        &mut self,
        session: &Session,
        rec: &[u8],
        fields: &mut Vec<Option<String>>,
    ) -> std::result::Result<(), CopyError> {
        self.decoder
            .fields(rec, fields)
            .map_err(|e| self.at_line(e))?;
        if self.line == 1 && self.decoder.options.header {
            if self.targets_from_header {
                return self.header(fields).map_err(|e| self.at_line(e));
            }
            return Ok(());
        }
        if fields.len() < self.targets.len() {
            let missing = &self.targets[fields.len()];
            return Err(self.at_line(format_error(format!(
                "missing data for column \"{missing}\""
            ))));
        }
        if fields.len() > self.targets.len() {
            return Err(self.at_line(format_error("extra data after last expected column")));
        }
        let (id, doc, given) = match self.collection.kind {
            Kind::Table => self.table_row(session, fields)?,
            Kind::Schemaless => {
                let (id, doc, given) = self.schemaless_row(fields)?;
                (id, binary::encode_object(&doc), given)
            }
        };
        if given && self.maybe_seen(&id) {
            return Err(self.at_line(duplicate_key(&self.collection, &id)));
        }
        if self.bulk_allowed {
            self.bulk_row(session, &id, &doc)
                .map_err(|e| self.at_line(e))?;
            self.bulk_ids.push(&id, self.line);
            return Ok(());
        }
        self.rows.push(Loaded {
            id,
            doc,
            line: self.line,
            given,
        });
        Ok(())
    }

    /// Whether a row before this one had the id `id` (the caller then has a duplicate).
    /// While the ids rise (in the order of [`rises`]), none can repeat and none is
    /// hashed: a load in key order, the usual one, skips the hash set (a tenth of a
    /// 1M-row load's parsing thread). The first id that does not rise hashes the ones
    /// before it.
    fn maybe_seen(&mut self, id: &str) -> bool {
        if let Some(last) = &mut self.rising {
            if rises(last, id) {
                last.clear();
                last.push_str(id);
                return false;
            }
            self.rising = None;
            let earlier = self.rows.iter().filter(|r| r.given).map(|r| r.id.as_str());
            for earlier in earlier.chain(self.bulk_ids.iter()) {
                self.ids
                    .insert(xxhash_rust::xxh3::xxh3_64(earlier.as_bytes()));
            }
        }
        !self.ids.insert(xxhash_rust::xxh3::xxh3_64(id.as_bytes()))
            && (self.rows.iter().any(|r| r.given && r.id == id)
                || self.bulk_ids.iter().any(|b| b == id))
    }

    /// Hands a row to the bulk load, starting it with the first.
    fn bulk_row(&mut self, session: &Session, id: &str, doc: &[u8]) -> Result<()> {
        let bulk = match &mut self.bulk {
            Some(b) => b,
            None => self.bulk.insert(session.database().catalog().bulk_load()?),
        };
        bulk.add(self.collection.id, id, doc)
    }

    /// The header of a schemaless collection's data names its fields.
    fn header(&mut self, fields: &[Option<String>]) -> Result<()> {
        let mut targets = Vec::with_capacity(fields.len());
        for f in fields {
            let name = match f {
                Some(n) if !n.is_empty() => n.clone(),
                _ => return Err(format_error("a header column name is empty or NULL")),
            };
            if targets.contains(&name) {
                return Err(Error::invalid(
                    DUPLICATE_COLUMN,
                    format!("column \"{name}\" specified more than once"),
                ));
            }
            targets.push(name);
        }
        self.types = vec![SqlType::Unknown; targets.len()];
        self.targets = targets;
        Ok(())
    }

    fn value_error(&self, column: &str, raw: &str, error: Error) -> CopyError {
        CopyError {
            error,
            context: Some(format!("{}, column {column}: \"{raw}\"", self.context())),
        }
    }

    fn table_row(
        &self,
        session: &Session,
        fields: &[Option<String>],
    ) -> std::result::Result<(String, Vec<u8>, bool), CopyError> {
        let mut row = Vec::with_capacity(fields.len());
        for ((f, ty), name) in fields.iter().zip(&self.types).zip(&self.targets) {
            row.push(match f.as_deref() {
                None => Value::Null,
                Some(t) => ty.parse_text(t).map_err(|e| self.value_error(name, t, e))?,
            });
        }
        let (id, values) =
            statement::table_values_from(&self.collection, &self.sources, row, session)
                .map_err(|e| self.at_line(e))?;
        crate::catalog::validate_document_id(&id).map_err(|e| self.at_line(e))?;
        let given = self.collection.primary_key.is_some();
        let mut doc = Vec::with_capacity(64);
        let names = self.collection.columns.iter().map(|c| c.name.as_str());
        binary::encode_fields(names.zip(&values), &mut doc);
        Ok((id, doc, given))
    }

    fn schemaless_row(
        &self,
        fields: &mut [Option<String>],
    ) -> std::result::Result<(String, Object, bool), CopyError> {
        let mut doc = Object::default();
        let mut id = None;
        for (f, name) in fields.iter_mut().zip(&self.targets) {
            if name == "id" {
                id = f.take();
                continue;
            }
            let v = match f.take() {
                None => Value::Null,
                Some(t) => text::infer_scalar(&t),
            };
            doc.insert(name.clone(), v);
        }
        match id {
            Some(id) => {
                crate::catalog::validate_document_id(&id).map_err(|e| self.at_line(e))?;
                Ok((id, doc, true))
            }
            None => Ok((uuid::Uuid::new_v4().to_string(), doc, false)),
        }
    }

    /// Ends the input, checks the ids against the stored documents and writes every
    /// row (see the module doc); the number of rows.
    fn finish(mut self, session: &Session) -> std::result::Result<u64, CopyError> {
        self.finish_input(session)?;
        let input_done = std::time::Instant::now();
        let db = session.database().clone();
        let collection = db
            .catalog()
            .get(&self.collection.name)
            .ok()
            .filter(|c| c.id == self.collection.id)
            .ok_or_else(|| {
                Error::not_found(
                    SqlState::UNDEFINED_TABLE,
                    format!(
                        "relation \"{}\" was dropped during COPY",
                        self.collection.name
                    ),
                )
            })?;
        if let Some(bulk) = self.bulk.take() {
            return self.finish_bulk(session, &collection, bulk, input_done);
        }
        let rows = std::mem::take(&mut self.rows);
        let n = rows.len() as u64;
        if rows.is_empty() {
            return Ok(0);
        }
        let keys: Vec<Vec<u8>> = rows
            .iter()
            .map(|r| keys::encode(collection.id, &r.id))
            .collect();
        let _locks = session.lock_for_write(
            rows.iter()
                .zip(&keys)
                .filter(|(r, _)| r.given)
                .map(|(_, k)| k.as_slice()),
        );
        // A collection with no document yet (the usual bulk load) needs no lookups.
        let empty = holds_nothing(session, collection.id)?;
        if !empty {
            for (r, key) in rows.iter().zip(&keys) {
                if r.given && session.exists(key)? {
                    return Err(CopyError {
                        error: duplicate_key(&collection, &r.id),
                        context: Some(format!("COPY {}, line {}", collection.name, r.line)),
                    });
                }
            }
        }
        let checked = std::time::Instant::now();
        // Checks that must see every row fail the whole COPY (unique values, references).
        let one_batch = session.in_transaction()
            || collection.indexes.iter().any(|i| i.unique)
            || !collection.foreign_keys.is_empty();
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        for (r, key) in rows.into_iter().zip(keys) {
            batch_bytes += r.doc.len() + key.len();
            batch.push(EncodedInsert {
                id: r.id,
                key,
                doc: r.doc,
            });
            if !one_batch && batch_bytes >= WRITE_BATCH_BYTES {
                write_rows(session, &collection, std::mem::take(&mut batch))?;
                batch_bytes = 0;
            }
        }
        if !batch.is_empty() {
            write_rows(session, &collection, batch)?;
        }
        // Where a load's time goes: receiving and validating the data (and waiting for
        // the client), checking the ids against stored documents, writing.
        tracing::debug!(
            collection = %collection.name,
            rows = n,
            bytes = self.received,
            input_ms = (input_done - self.started).as_millis() as u64,
            check_ms = (checked - input_done).as_millis() as u64,
            write_ms = checked.elapsed().as_millis() as u64,
            "COPY FROM STDIN done"
        );
        Ok(n)
    }
}

impl CopyIn {
    /// [`CopyIn::finish`] for a bulk load: waits for its segment files, checks the ids
    /// against the stored documents under their key locks, and installs the files.
    fn finish_bulk(
        &mut self,
        session: &Session,
        collection: &Collection,
        bulk: BulkLoad,
        input_done: std::time::Instant,
    ) -> std::result::Result<u64, CopyError> {
        // Dropped on any error below: its files go.
        let built = bulk.finish()?;
        let built_at = std::time::Instant::now();
        let ids = std::mem::take(&mut self.bulk_ids);
        let n = ids.len() as u64;
        let mut keys = Vec::with_capacity(ids.text.len() + 4 * ids.len());
        let mut ends = Vec::with_capacity(ids.len());
        for id in ids.iter() {
            keys.extend_from_slice(&collection.id.to_be_bytes());
            keys.extend_from_slice(id.as_bytes());
            ends.push(keys.len());
        }
        let key_list = || {
            std::iter::once(0)
                .chain(ends.iter().copied())
                .zip(&ends)
                .map(|(start, &end)| keys.get(start..end).unwrap_or_default())
        };
        let given = collection.primary_key.is_some();
        let _locks = session.lock_for_write(key_list().filter(|_| given));
        // A collection with no document yet (the usual bulk load) needs no lookups.
        let empty = holds_nothing(session, collection.id)?;
        if given && !empty {
            for (i, (key, id)) in key_list().zip(ids.iter()).enumerate() {
                if session.exists(key)? {
                    return Err(CopyError {
                        error: duplicate_key(collection, id),
                        context: Some(format!(
                            "COPY {}, line {}",
                            collection.name,
                            ids.first_line + i as u64
                        )),
                    });
                }
            }
        }
        let checked = std::time::Instant::now();
        session
            .database()
            .catalog()
            .install_bulk(&collection.name, collection.id, built)?;
        tracing::debug!(
            collection = %collection.name,
            rows = n,
            bytes = self.received,
            input_ms = (input_done - self.started).as_millis() as u64,
            segments_ms = (built_at - input_done).as_millis() as u64,
            check_ms = (checked - built_at).as_millis() as u64,
            install_ms = checked.elapsed().as_millis() as u64,
            "COPY FROM STDIN done (bulk load)"
        );
        Ok(n)
    }
}

/// Whether id `next` comes after `last` in an order of ids by length, then bytes: a
/// strict total order (equal ids compare equal), in which ids that are integers with no
/// sign or leading zero come in numeric order. The empty id of a load's start comes
/// before any other.
fn rises(last: &str, next: &str) -> bool {
    (last.len(), last.as_bytes()) < (next.len(), next.as_bytes())
}

/// Whether collection `cid` holds no document.
fn holds_nothing(session: &Session, cid: u32) -> Result<bool> {
    Ok(session
        .read_view()
        .scan_collection(cid)
        .next()
        .transpose()?
        .is_none())
}

/// Writes validated rows: in a transaction block they join its writes; otherwise they
/// go to the catalog in their binary form (see [`crate::catalog::Catalog::insert_encoded`]).
fn write_rows(session: &Session, collection: &Collection, rows: Vec<EncodedInsert>) -> Result<()> {
    if !session.in_transaction() {
        return session
            .database()
            .catalog()
            .insert_encoded(&collection.name, collection.id, rows);
    }
    let writes = rows
        .into_iter()
        .map(EncodedInsert::decoded)
        .collect::<Result<Vec<_>>>()?;
    session.write_documents(collection, writes)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::database::Database;

    fn open() -> (tempfile::TempDir, Arc<Database>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        })
        .unwrap();
        (dir, db)
    }

    fn options(sql_options: &str) -> Options {
        let sql = format!("COPY t FROM STDIN {sql_options}");
        let stmts = tissdb_dialect::parse(&sql).unwrap();
        let TissStatement::Sql(s) = &stmts[0] else {
            panic!("not SQL")
        };
        let ast::Statement::Copy {
            options,
            legacy_options,
            ..
        } = s.as_ref()
        else {
            panic!("not COPY")
        };
        Options::from_ast(options, legacy_options).unwrap()
    }

    /// Every record of `data` cut into fields, fed in chunks of `chunk` bytes.
    fn decode(o: &Options, data: &[u8], chunk: usize) -> Vec<Vec<Option<String>>> {
        let mut d = Decoder::new(o.clone());
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut fields = Vec::new();
        for piece in data.chunks(chunk) {
            pending.extend_from_slice(piece);
            let mut at = 0;
            while let Some((len, taken)) = d.next_record(&pending[at..]) {
                let rec = pending[at..at + len].to_vec();
                at += taken;
                d.fields(&rec, &mut fields).unwrap();
                out.push(fields.clone());
            }
            pending.drain(..at);
        }
        if !pending.is_empty() {
            d.fields(&pending.clone(), &mut fields).unwrap();
            out.push(fields.clone());
        }
        out
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn options_follow_postgresql_defaults_and_rules() {
        let text = options("");
        assert_eq!(
            (text.format, text.delimiter, text.null.as_str()),
            (Format::Text, b'\t', "\\N")
        );
        let csv = options("WITH (FORMAT csv, HEADER true, DELIMITER ';', QUOTE '''')");
        assert_eq!(
            (csv.format, csv.delimiter, csv.quote, csv.escape, csv.header),
            (Format::Csv, b';', b'\'', b'\'', true)
        );
        assert_eq!(csv.null, "");
        // The legacy spelling.
        let legacy = options("CSV HEADER QUOTE '|' ESCAPE '\\'");
        assert_eq!(
            (legacy.format, legacy.header, legacy.quote, legacy.escape),
            (Format::Csv, true, b'|', b'\\')
        );
        let bad = |o: &str| {
            let sql = format!("COPY t FROM STDIN {o}");
            let stmts = tissdb_dialect::parse(&sql).unwrap();
            let TissStatement::Sql(s) = &stmts[0] else {
                panic!()
            };
            let ast::Statement::Copy {
                options,
                legacy_options,
                ..
            } = s.as_ref()
            else {
                panic!()
            };
            Options::from_ast(options, legacy_options)
                .unwrap_err()
                .sqlstate()
        };
        assert_eq!(bad("WITH (QUOTE '\"')"), SqlState::FEATURE_NOT_SUPPORTED);
        assert_eq!(bad("WITH (FORMAT binary)"), SqlState::FEATURE_NOT_SUPPORTED);
        assert_eq!(bad("WITH (FORMAT xml)"), SqlState::INVALID_PARAMETER_VALUE);
        assert_eq!(
            bad("WITH (DELIMITER 'a')"),
            SqlState::INVALID_PARAMETER_VALUE
        );
        assert_eq!(
            bad("WITH (FORMAT csv, NULL 'a,b')"),
            SqlState::INVALID_PARAMETER_VALUE
        );
    }

    #[test]
    fn text_records_unescape_and_split_in_any_chunking() {
        let o = options("");
        let data = b"a\\tb\t\\N\tx\\\\y\n\\101\\x41z\t\t\\\nnext\r\n\\.\n";
        let want = vec![
            vec![s("a\tb"), None, s("x\\y")],
            // Octal and hex escapes; an empty field; a backslash-newline is data.
            vec![s("AAz"), s(""), s("\nnext")],
            vec![s(".")],
        ];
        for chunk in 1..=data.len() {
            assert_eq!(decode(&o, data, chunk), want, "chunks of {chunk}");
        }
    }

    #[test]
    fn csv_records_keep_quoted_delimiters_quotes_and_line_breaks_in_any_chunking() {
        let o = options("CSV");
        let data = b"1,\"a,b\",\"say \"\"hi\"\"\",,\"\"\r\n2,\"two\nlines\",x,\"\",\n";
        let want = vec![
            vec![s("1"), s("a,b"), s("say \"hi\""), None, s("")],
            vec![s("2"), s("two\nlines"), s("x"), s(""), None],
        ];
        for chunk in 1..=data.len() {
            assert_eq!(decode(&o, data, chunk), want, "chunks of {chunk}");
        }
        // An escape character other than the quote.
        let o = options("CSV ESCAPE '\\'");
        let data = b"\"a\\\"b\",\"c\\\\d\",\"e\\f\"\n";
        for chunk in 1..=data.len() {
            assert_eq!(
                decode(&o, data, chunk),
                vec![vec![s("a\"b"), s("c\\d"), s("e\\f")]],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn output_escapes_and_quotes_as_postgresql() {
        let mut out = Vec::new();
        escape_text(&mut out, "a\tb\\c\nd|e", b'|');
        assert_eq!(out, b"a\\tb\\\\c\\nd\\|e");
        let o = options("CSV");
        let quoted = |v: &str| {
            let mut out = Vec::new();
            quote_csv(&mut out, v, &o);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(quoted("plain"), "plain");
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("a,b"), "\"a,b\"");
        assert_eq!(quoted("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quoted("two\nlines"), "\"two\nlines\"");
        assert_eq!(quoted("\\."), "\"\\.\"");
    }

    #[test]
    fn an_inline_payload_loads_through_any_front_end_all_or_nothing() {
        let (_dir, db) = open();
        let mut s = Session::new(db);
        let run = |s: &mut Session, sql: &str| s.execute_batch(sql).pop().unwrap();
        run(&mut s, "CREATE TABLE t (id integer PRIMARY KEY, v text)").unwrap();
        // No front-end moving COPY data: COPY FROM STDIN without inline data is refused.
        let e = run(&mut s, "COPY t FROM STDIN").unwrap_err();
        assert_eq!(e.sqlstate(), SqlState::FEATURE_NOT_SUPPORTED);
        let out = run(&mut s, "COPY t FROM STDIN;\n1\ta\n2\tb\n\\.\n").unwrap();
        assert_eq!(out.tag(), "COPY 2");
        let e = run(&mut s, "COPY t FROM STDIN;\n3\tc\nx\td\n\\.\n").unwrap_err();
        assert_eq!(e.sqlstate(), SqlState::INVALID_TEXT_REPRESENTATION);
        assert!(e.to_string().contains("COPY t, line 2, column id"), "{e}");
        let Outcome::Rows { rows, .. } = run(&mut s, "SELECT count(*) FROM t").unwrap() else {
            panic!("no rows")
        };
        assert_eq!(rows, vec![vec![Value::Int(2)]]);
    }

    #[test]
    fn the_client_copy_api_validates_everything_before_writing() {
        let (_dir, db) = open();
        let mut s = Session::new(db);
        s.allow_client_copy();
        s.execute_batch("CREATE COLLECTION c")
            .pop()
            .unwrap()
            .unwrap();
        s.execute_batch("COPY c FROM STDIN WITH (FORMAT csv, HEADER)")
            .pop()
            .unwrap()
            .unwrap();
        assert!(s.copy_in_columns().is_some());
        s.copy_data(b"id,n,zip\na,1,007\nb,2.50,").unwrap();
        s.copy_data(b"08\n").unwrap();
        assert_eq!(s.copy_done().unwrap(), 2);
        let Outcome::Rows { rows, .. } = s
            .execute_batch("SELECT id, n, zip FROM c ORDER BY id")
            .pop()
            .unwrap()
            .unwrap()
        else {
            panic!("no rows")
        };
        // n holds an integer and a float: one number column (float8); zip stays text.
        assert_eq!(
            rows,
            vec![
                vec![
                    Value::String("a".into()),
                    Value::Float(1.0),
                    Value::String("007".into())
                ],
                vec![
                    Value::String("b".into()),
                    Value::Float(2.5),
                    Value::String("08".into())
                ],
            ]
        );
        // A duplicate of a stored id is found at the end; nothing is written.
        s.execute_batch("COPY c (id, n) FROM STDIN")
            .pop()
            .unwrap()
            .unwrap();
        s.copy_data(b"c\t3\na\t4\n").unwrap();
        let e = s.copy_done().unwrap_err();
        assert_eq!(e.error.sqlstate(), SqlState::UNIQUE_VIOLATION);
        assert_eq!(e.context.as_deref(), Some("COPY c, line 2"));
        assert!(s.copy_in_columns().is_none());
        let Outcome::Rows { rows, .. } = s
            .execute_batch("SELECT count(*) FROM c")
            .pop()
            .unwrap()
            .unwrap()
        else {
            panic!("no rows")
        };
        assert_eq!(rows, vec![vec![Value::Int(2)]]);
    }
}
