//! One error type for the whole engine.
//!
//! Variants are named by what the caller does next: fix the input, look for something
//! else, retry, give up on writing, or report corruption. Every error carries a SQLSTATE
//! (see [`SqlState`]); the wire front-end sends it as is and the REST front-end maps it to
//! an HTTP status, each in one place.

use std::fmt;

/// A PostgreSQL SQLSTATE code, as sent to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SqlState(pub &'static str);

impl SqlState {
    pub const NO_DATA: SqlState = SqlState("02000");
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState("0A000");
    pub const INVALID_TEXT_REPRESENTATION: SqlState = SqlState("22P02");
    pub const INVALID_PARAMETER_VALUE: SqlState = SqlState("22023");
    pub const INVALID_XML_DOCUMENT: SqlState = SqlState("2200M");
    pub const INVALID_JSON_TEXT: SqlState = SqlState("22032");
    pub const STRING_DATA_RIGHT_TRUNCATION: SqlState = SqlState("22001");
    pub const NOT_NULL_VIOLATION: SqlState = SqlState("23502");
    pub const FOREIGN_KEY_VIOLATION: SqlState = SqlState("23503");
    pub const UNIQUE_VIOLATION: SqlState = SqlState("23505");
    pub const DEPENDENT_OBJECTS_STILL_EXIST: SqlState = SqlState("2BP01");
    pub const READ_ONLY_SQL_TRANSACTION: SqlState = SqlState("25006");
    pub const ACTIVE_SQL_TRANSACTION: SqlState = SqlState("25001");
    pub const NO_ACTIVE_SQL_TRANSACTION: SqlState = SqlState("25P01");
    pub const IN_FAILED_SQL_TRANSACTION: SqlState = SqlState("25P02");
    pub const TRANSACTION_TIMEOUT: SqlState = SqlState("25P04");
    pub const INVALID_SAVEPOINT: SqlState = SqlState("3B001");
    pub const SERIALIZATION_FAILURE: SqlState = SqlState("40001");
    pub const SYNTAX_ERROR: SqlState = SqlState("42601");
    pub const INVALID_NAME: SqlState = SqlState("42602");
    pub const UNDEFINED_TABLE: SqlState = SqlState("42P01");
    pub const DUPLICATE_TABLE: SqlState = SqlState("42P07");
    pub const UNDEFINED_OBJECT: SqlState = SqlState("42704");
    pub const UNDEFINED_COLUMN: SqlState = SqlState("42703");
    pub const DATATYPE_MISMATCH: SqlState = SqlState("42804");
    pub const INVALID_FOREIGN_KEY: SqlState = SqlState("42830");
    pub const DUPLICATE_OBJECT: SqlState = SqlState("42710");
    pub const PROGRAM_LIMIT_EXCEEDED: SqlState = SqlState("54000");
    pub const CONFIGURATION_LIMIT_EXCEEDED: SqlState = SqlState("53400");
    pub const STATEMENT_TOO_COMPLEX: SqlState = SqlState("54001");
    pub const IO_ERROR: SqlState = SqlState("58030");
    pub const CONFIG_FILE_ERROR: SqlState = SqlState("F0000");
    pub const INTERNAL_ERROR: SqlState = SqlState("XX000");
    pub const DATA_CORRUPTED: SqlState = SqlState("XX001");

    pub fn code(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Every failure the engine reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong: fix it and send it again (bad syntax, bad value, bad name).
    #[error("{message}")]
    InvalidInput { code: SqlState, message: String },
    /// The statement text does not parse; `position` is the 1-based character offset of
    /// the error in the statement, when known.
    #[error("{message}")]
    Syntax {
        message: String,
        position: Option<usize>,
    },
    /// What the request names does not exist (a collection, a document).
    #[error("{message}")]
    NotFound { code: SqlState, message: String },
    /// What the request would create exists already (a collection, a document id).
    #[error("{message}")]
    Conflict { code: SqlState, message: String },
    /// The request would break a declared constraint, or an object that depends on what
    /// it removes (a foreign key): change the data or the statement. `detail` and `hint`
    /// are PostgreSQL's DETAIL and HINT lines.
    #[error("{message}")]
    Violation {
        code: SqlState,
        message: String,
        /// Boxed, so the error stays small on every other path.
        more: Box<Explanation>,
    },
    /// The request is over a configured limit; the limit is named in the message.
    #[error("{message}")]
    LimitExceeded { code: SqlState, message: String },
    /// The engine refuses writes: a WAL write failed earlier, and writing on could lose data.
    #[error("storage is read-only: {0}")]
    ReadOnly(String),
    /// Stored data failed a check; the facts are in the message.
    #[error("data corrupted: {0}")]
    Corruption(String),
    /// The operating system failed an I/O call.
    #[error("I/O error while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Configuration could not be read or is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A bug: something the engine believed impossible happened.
    #[error("internal error: {0}")]
    Internal(String),
}

/// PostgreSQL's DETAIL and HINT lines of an [`Error::Violation`].
#[derive(Debug, Default)]
pub struct Explanation {
    pub detail: Option<String>,
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(code: SqlState, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: SqlState, message: impl Into<String>) -> Self {
        Error::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: SqlState, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    /// A [`Error::Violation`] with PostgreSQL's DETAIL line.
    pub fn violation(
        code: SqlState,
        message: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Error::Violation {
            code,
            message: message.into(),
            more: Box::new(Explanation {
                detail: Some(detail.into()),
                hint: None,
            }),
        }
    }

    /// The same error with a HINT line (only a [`Error::Violation`] carries one).
    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        if let Error::Violation { more, .. } = &mut self {
            more.hint = Some(text.into());
        }
        self
    }

    /// PostgreSQL's DETAIL line, if the error has one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Error::Violation { more, .. } => more.detail.as_deref(),
            _ => None,
        }
    }

    /// PostgreSQL's HINT line, if the error has one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Violation { more, .. } => more.hint.as_deref(),
            _ => None,
        }
    }

    pub fn limit(message: impl Into<String>) -> Self {
        Error::LimitExceeded {
            code: SqlState::PROGRAM_LIMIT_EXCEEDED,
            message: message.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The SQLSTATE sent to clients for this error.
    pub fn sqlstate(&self) -> SqlState {
        match self {
            Error::InvalidInput { code, .. }
            | Error::NotFound { code, .. }
            | Error::Conflict { code, .. }
            | Error::Violation { code, .. }
            | Error::LimitExceeded { code, .. } => *code,
            Error::Syntax { .. } => SqlState::SYNTAX_ERROR,
            Error::ReadOnly(_) => SqlState::READ_ONLY_SQL_TRANSACTION,
            Error::Corruption(_) => SqlState::DATA_CORRUPTED,
            Error::Io { .. } => SqlState::IO_ERROR,
            Error::Config(_) => SqlState::CONFIG_FILE_ERROR,
            Error::Internal(_) => SqlState::INTERNAL_ERROR,
        }
    }
}
