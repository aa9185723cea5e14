//! Engine errors to HTTP answers: the status is chosen here and only here; the body is
//! always JSON `{"error": {"code": "<SQLSTATE>", "message": "..."}}`, with `"detail"`
//! when the engine gives PostgreSQL's DETAIL line.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tissdb::{Error, SqlState};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: SqlState,
    pub message: String,
    /// For imports: the 1-based number of the document the error is about.
    pub row: Option<u64>,
    /// For imports: the 1-based line of the body where that document starts.
    pub line: Option<u64>,
    /// PostgreSQL's DETAIL line (a foreign key violation names the key); boxed to keep
    /// the error small.
    pub detail: Option<Box<String>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: SqlState, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            row: None,
            line: None,
            detail: None,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::InvalidInput { .. } | Error::Syntax { .. } => StatusCode::BAD_REQUEST,
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::Conflict { .. } | Error::Violation { .. } => StatusCode::CONFLICT,
            Error::LimitExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::ReadOnly(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Corruption(_) | Error::Io { .. } | Error::Config(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        let mut api = ApiError::new(status, e.sqlstate(), e.to_string());
        api.detail = e.detail().map(|d| Box::new(d.to_string()));
        api
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code.code(), "message": self.message });
        if let Some(row) = self.row {
            error["row"] = row.into();
        }
        if let Some(line) = self.line {
            error["line"] = line.into();
        }
        if let Some(detail) = self.detail {
            error["detail"] = (*detail).into();
        }
        let body = serde_json::json!({ "error": error });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was not read: the connection cannot carry another
            // request, and the client must know it.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}
