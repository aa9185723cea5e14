//! Every error the wire front-end sends, built in one place: engine errors keep their
//! SQLSTATE, message, DETAIL and HINT; protocol and conversion errors get PostgreSQL's codes.

use pgwire::error::{ErrorInfo, PgWireError, SEVERITY_ERROR};

/// `08P01`: the client broke the protocol (wrong parameter count, bad format codes).
pub const PROTOCOL_VIOLATION: &str = "08P01";
/// `22P02`: a value that does not fit its column's type in binary.
pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
/// `22P03`: a binary parameter that is not a valid value of its type.
pub const INVALID_BINARY_REPRESENTATION: &str = "22P03";
/// `22021`: bytes that are not UTF-8 where text was expected.
pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
/// `22008`: a date or timestamp outside the engine's range.
pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
/// `0A000`: something the front-end does not support.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// `57014`: the statement was cancelled by a cancel request.
pub const QUERY_CANCELED: &str = "57014";
/// `XX000`: a bug.
pub const INTERNAL_ERROR: &str = "XX000";

/// An `ERROR` with `code` and `message`.
pub fn info(code: &str, message: impl Into<String>) -> ErrorInfo {
    let mut info = ErrorInfo::new(SEVERITY_ERROR.to_owned(), code.to_owned(), message.into());
    info.severity_nonlocalized = Some(SEVERITY_ERROR.to_owned());
    info
}

/// The same, as the error type pgwire handlers return.
pub fn user(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(info(code, message)))
}

/// A protocol violation (`08P01`); the connection stays open, as in PostgreSQL.
pub fn protocol(message: impl Into<String>) -> PgWireError {
    user(PROTOCOL_VIOLATION, message)
}

/// An engine error as the client sees it: its SQLSTATE and message. Errors that point
/// at the server rather than the statement are logged too.
pub fn engine_info(e: &tissdb::Error) -> ErrorInfo {
    let code = e.sqlstate().code();
    if code.starts_with("XX") || code.starts_with("58") {
        tracing::error!(sqlstate = code, "statement failed: {e}");
    } else {
        tracing::debug!(sqlstate = code, "statement failed: {e}");
    }
    let mut info = info(code, e.to_string());
    if let tissdb::Error::Syntax {
        position: Some(p), ..
    } = e
    {
        info.position = Some(p.to_string());
    }
    info.detail = e.detail().map(str::to_string);
    info.hint = e.hint().map(str::to_string);
    info
}

/// An engine error as the error type pgwire handlers return.
pub fn engine(e: &tissdb::Error) -> PgWireError {
    PgWireError::UserError(Box::new(engine_info(e)))
}

/// A bug in the front-end or a panic in the engine.
pub fn internal(message: impl Into<String>) -> PgWireError {
    let message = message.into();
    tracing::error!("internal error: {message}");
    user(INTERNAL_ERROR, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tissdb::SqlState;

    #[test]
    fn engine_errors_keep_code_and_message() {
        let e =
            tissdb::Error::not_found(SqlState::UNDEFINED_TABLE, "relation \"t\" does not exist");
        let info = engine_info(&e);
        assert_eq!(info.severity, "ERROR");
        assert_eq!(info.code, "42P01");
        assert_eq!(info.message, "relation \"t\" does not exist");
        let PgWireError::UserError(boxed) = engine(&tissdb::Error::ReadOnly("wal".into())) else {
            panic!("not a user error");
        };
        assert_eq!(boxed.code, "25006");
    }
}
