//! Which statements run right on the connection's task.
//!
//! A statement runs on the connection's async worker in one of two ways: under
//! `block_in_place`, which hands the worker's other duties to another thread first
//! (safe for a statement of any length, but the hand-off costs more than a point lookup),
//! or directly, with no hand-off (W2's point SELECT at 8 clients: about 15k statements/s
//! the first way, 25k the second). The extended protocol knows from the plan which reads
//! are point lookups. For the rest, the other reads of either protocol (a join of a few
//! rows by index: J2 at 1 client, 97 us of server CPU per statement in place, 64
//! directly) and writes of either protocol (a write takes microseconds once its fsync is
//! awaited rather than slept through: see
//! [`crate::session::SessionHandle::run_write`]), each connection remembers how long
//! statements of each *shape* took: the text with its numbers and quoted strings taken
//! out, so `... WHERE id = 7` and `... WHERE id = 9` share one. A shape runs directly
//! once it has run in place in under [`QUICK`], and goes back to running in place as
//! soon as one of its direct runs takes longer than [`SLOW`]: at worst one statement
//! holds a worker for the length of one slow run.

use std::collections::HashMap;
use std::hash::Hasher;
use std::time::Duration;

use parking_lot::Mutex;

/// A run this short (in place) makes its shape run directly from then on.
pub const QUICK: Duration = Duration::from_micros(300);
/// A direct run this long sends its shape back to running in place.
pub const SLOW: Duration = Duration::from_millis(2);
/// Longest query text whose shape is remembered; longer ones always run in place.
pub const MAX_TEXT: usize = 2048;
/// Shapes remembered per connection; past this the memory starts over.
pub const MAX_SHAPES: usize = 256;

/// The shapes one connection has learned run quickly.
#[derive(Default)]
pub struct QuickReads {
    quick: Mutex<HashMap<u64, bool>>,
}

impl QuickReads {
    /// The shape of `sql`, if it is short enough to be remembered.
    pub fn shape(sql: &str) -> Option<u64> {
        (sql.len() <= MAX_TEXT).then(|| shape_hash(sql))
    }

    /// Whether queries of this shape have proved quick.
    pub fn is_quick(&self, shape: u64) -> bool {
        self.quick.lock().get(&shape).copied().unwrap_or(false)
    }

    /// Records how long a run of this shape took, `direct` or in place.
    pub fn record(&self, shape: u64, direct: bool, took: Duration) {
        let quick = match direct {
            true => took <= SLOW,
            false => took <= QUICK,
        };
        let mut map = self.quick.lock();
        if map.len() >= MAX_SHAPES && !map.contains_key(&shape) {
            map.clear();
        }
        map.insert(shape, quick);
    }
}

/// Hashes `sql` with every number and quoted string ('...', "..." stays: it names
/// something) replaced by one marker.
fn shape_hash(sql: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    let bytes = sql.as_bytes();
    let mut i = 0;
    // Whether the byte before `i` belongs to a word (digits inside a name stay).
    let mut in_word = false;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\'' {
            // A string literal; '' inside it is a quote.
            i += 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            h.write_u8(0);
            in_word = false;
            continue;
        }
        if b.is_ascii_digit() && !in_word {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            h.write_u8(1);
            continue;
        }
        in_word = b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
        h.write_u8(b);
        i += 1;
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_share_a_shape_and_names_do_not() {
        let a = shape_hash("SELECT * FROM t WHERE id = 7");
        assert_eq!(a, shape_hash("SELECT * FROM t WHERE id = 123456"));
        assert_eq!(
            shape_hash("SELECT v FROM t WHERE k = 'a'"),
            shape_hash("SELECT v FROM t WHERE k = 'it''s 9'")
        );
        assert_ne!(a, shape_hash("SELECT * FROM t2 WHERE id = 7"));
        assert_ne!(a, shape_hash("SELECT * FROM t WHERE id > 7"));
        assert_ne!(
            shape_hash("SELECT c1 FROM t"),
            shape_hash("SELECT c2 FROM t"),
            "digits inside a name are part of it"
        );
    }

    #[test]
    fn a_shape_turns_quick_after_a_quick_run_and_back_after_a_slow_direct_one() {
        let reads = QuickReads::default();
        let shape = QuickReads::shape("SELECT 1").unwrap();
        assert!(!reads.is_quick(shape));
        reads.record(shape, false, QUICK * 2);
        assert!(!reads.is_quick(shape));
        reads.record(shape, false, QUICK / 2);
        assert!(reads.is_quick(shape));
        reads.record(shape, true, SLOW / 2);
        assert!(reads.is_quick(shape));
        reads.record(shape, true, SLOW * 2);
        assert!(!reads.is_quick(shape));
        assert!(QuickReads::shape(&"x".repeat(MAX_TEXT + 1)).is_none());
    }

    #[test]
    fn the_memory_is_bounded() {
        let reads = QuickReads::default();
        for i in 0..(MAX_SHAPES as u64 * 3) {
            reads.record(i, false, Duration::ZERO);
        }
        assert!(reads.quick.lock().len() <= MAX_SHAPES);
    }
}
