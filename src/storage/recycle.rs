//! Row and key buffers of scans, reused on the thread that read them.
//!
//! A scan that filters and aggregates reads each row and key and drops them at once.
//! Rather than allocate a row vector, its strings and a key for every document, a scan
//! decodes into buffers its reader handed back ([`give_row`], [`give_key`]): a row comes
//! back with its old values in place, and a string value decoded into a slot that holds a
//! string overwrites it in its buffer. So a full scan of a table allocates per block and
//! per group, not per row (`tests/allocations.rs` counts).
//!
//! The buffers are kept per thread, at most [`MAX_KEPT`] rows and keys each, and only
//! small ones (a row of at most [`MAX_KEPT_WIDTH`] values holding no string longer than
//! [`MAX_KEPT_STRING`] bytes and no nested value; a key of at most [`MAX_KEPT_KEY`]
//! bytes), so what a thread holds on to stays small. Rows that leave the thread (sent to
//! a client, sorted, kept) are simply not handed back.

use std::cell::RefCell;

use crate::doc::Value;

/// Rows (and keys) kept per thread: more than a memtable scan reads ahead of its reader.
pub const MAX_KEPT: usize = 512;
/// Widest row kept.
pub const MAX_KEPT_WIDTH: usize = 64;
/// Longest string buffer a kept row holds on to; longer ones are dropped when handed back.
pub const MAX_KEPT_STRING: usize = 256;
/// Longest key buffer kept.
pub const MAX_KEPT_KEY: usize = 256;

thread_local! {
    static ROWS: RefCell<Vec<Vec<Value>>> = const { RefCell::new(Vec::new()) };
    static KEYS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A row of `width` values to decode into: one handed back, with its old values still in
/// place (the caller overwrites or clears each), or a new one of NULLs.
pub fn take_row(width: usize) -> Vec<Value> {
    let mut row = ROWS
        .try_with(|rows| rows.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default();
    row.resize_with(width, || Value::Null);
    row
}

/// Hands back a row its reader is done with. Nested values and long strings are dropped
/// now; short strings stay for the next row to overwrite.
pub fn give_row(mut row: Vec<Value>) {
    if row.capacity() == 0 || row.capacity() > MAX_KEPT_WIDTH {
        return;
    }
    for v in &mut row {
        match v {
            Value::String(s) if s.capacity() <= MAX_KEPT_STRING => {}
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::DateTime(_) => {
            }
            _ => *v = Value::Null,
        }
    }
    let _ = ROWS.try_with(|rows| {
        let mut rows = rows.borrow_mut();
        if rows.len() < MAX_KEPT {
            rows.push(row);
        }
    });
}

/// `key` in a buffer of its own: one handed back if there is one.
pub fn key_from(key: &[u8]) -> Vec<u8> {
    match KEYS.try_with(|keys| keys.borrow_mut().pop()).ok().flatten() {
        Some(mut buffer) => {
            buffer.clear();
            buffer.extend_from_slice(key);
            buffer
        }
        None => key.to_vec(),
    }
}

/// Hands back a key its reader is done with.
pub fn give_key(key: Vec<u8>) {
    if key.capacity() == 0 || key.capacity() > MAX_KEPT_KEY {
        return;
    }
    let _ = KEYS.try_with(|keys| {
        let mut keys = keys.borrow_mut();
        if keys.len() < MAX_KEPT {
            keys.push(key);
        }
    });
}

/// Stores a decoded string in `slot`, in the buffer of the string already there if any.
pub fn put_str(slot: &mut Value, text: &str) {
    match slot {
        Value::String(s) => {
            s.clear();
            s.push_str(text);
        }
        other => *other = Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_with_short_strings_and_without_nested_values() {
        give_row(vec![
            Value::String("short".into()),
            Value::String("x".repeat(MAX_KEPT_STRING + 1)),
            Value::Array(vec![Value::Int(1)]),
            Value::Int(7),
        ]);
        let row = take_row(3);
        assert_eq!(
            row,
            vec![Value::String("short".into()), Value::Null, Value::Null]
        );
        // Nothing kept: a new row of NULLs.
        assert_eq!(take_row(2), vec![Value::Null, Value::Null]);
    }

    #[test]
    fn strings_are_overwritten_in_their_buffer() {
        let mut slot = Value::String(String::with_capacity(32));
        let Value::String(s) = &slot else { panic!() };
        let buffer = s.as_ptr();
        put_str(&mut slot, "brand_07");
        assert_eq!(slot, Value::String("brand_07".into()));
        let Value::String(s) = &slot else { panic!() };
        assert_eq!(s.as_ptr(), buffer);
        let mut other = Value::Int(1);
        put_str(&mut other, "x");
        assert_eq!(other, Value::String("x".into()));
    }

    #[test]
    fn keys_are_reused_and_bounded() {
        give_key(Vec::with_capacity(16));
        give_key(vec![0; MAX_KEPT_KEY + 1]);
        let k = key_from(b"abc");
        assert_eq!(k, b"abc");
        assert_eq!(k.capacity(), 16);
        assert_eq!(key_from(b"d").capacity(), 1);
    }
}
