//! Rules for the names of collections and the ids of documents.

use crate::error::{Error, Result, SqlState};

/// Longest collection name, as PostgreSQL's identifier limit (NAMEDATALEN - 1).
pub const MAX_NAME_LEN: usize = 63;
/// Longest document id, in bytes.
pub const MAX_ID_LEN: usize = 512;

/// A collection name: a letter, then letters, digits and underscores, at most 63 bytes.
/// Names starting with `_` are reserved for the REST API's own endpoints.
pub fn validate_collection_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid(
            SqlState::INVALID_NAME,
            format!("invalid collection name {name:?}: {why}"),
        ))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad(&format!("longer than {MAX_NAME_LEN} bytes"));
    }
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return bad("it must start with a letter");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return bad("only letters, digits and underscores are allowed");
    }
    Ok(())
}

/// A document id: 1 to 512 bytes of UTF-8 without control characters, not starting with
/// `_` (reserved for endpoints such as `/<collection>/_query`).
pub fn validate_document_id(id: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid(
            SqlState::INVALID_TEXT_REPRESENTATION,
            format!("invalid document id {id:?}: {why}"),
        ))
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad(&format!("longer than {MAX_ID_LEN} bytes"));
    }
    if id.starts_with('_') {
        return bad("ids starting with '_' are reserved");
    }
    if id.chars().any(char::is_control) {
        return bad("control characters are not allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["products", "P2", "order_items"] {
            assert!(validate_collection_name(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in ["", "_x", "1a", "a-b", "a b", "é", long.as_str()] {
            assert!(validate_collection_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids() {
        for ok in ["product_789", "a1b2c3d4-e5f6", "with space", "ünï/côdé"] {
            assert!(validate_document_id(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(513);
        for bad in ["", "_compact", "a\u{0}b", "tab\there", long.as_str()] {
            assert!(validate_document_id(bad).is_err(), "{bad:?}");
        }
    }
}
