//! A leaf's entries as a decoded node holds them: every key and value packed into one
//! buffer, in key order, with the offsets where each entry's key and value end beside it.
//!
//! A leaf of index entries (keys of 15 to 30 bytes, empty values) held as one vector of
//! (key, value) pairs took 64 bytes an entry before the vector's spare room, two to four
//! times its bytes in the page; index pages, cached and changed alike, were most of an
//! indexed table's memory. Packed, an entry takes its bytes and 8 bytes of offsets. A
//! binary search reads the offsets (eight entries to a cache line) and the keys where they
//! lie, and inserting or removing an entry moves at most a page's bytes.

use std::fmt;

/// The entries of a leaf, in ascending key order (kept so by the callers: the tree
/// inserts at the position a search returned).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Entries {
    /// key 0, value 0, key 1, value 1, ... back to back.
    bytes: Vec<u8>,
    /// For each entry, where its key ends and where its value ends in `bytes`; an entry
    /// starts where the one before it ends.
    ends: Vec<(u32, u32)>,
}

impl Entries {
    pub fn new() -> Entries {
        Entries::default()
    }

    /// Room for `entries` entries of `bytes` bytes of keys and values in all.
    pub fn with_capacity(entries: usize, bytes: usize) -> Entries {
        Entries {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(entries),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Where entry `i` starts in `bytes` (the end of the buffer for `i == len`).
    fn start(&self, i: usize) -> usize {
        match i.checked_sub(1) {
            None => 0,
            Some(before) => self
                .ends
                .get(before)
                .map_or(self.bytes.len(), |e| e.1 as usize),
        }
    }

    /// Entry `i`'s key and value.
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let &(key_end, value_end) = self.ends.get(i)?;
        let start = self.start(i);
        Some((
            self.bytes.get(start..key_end as usize)?,
            self.bytes.get(key_end as usize..value_end as usize)?,
        ))
    }

    /// Entry `i`'s key.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        let &(key_end, _) = self.ends.get(i)?;
        self.bytes.get(self.start(i)..key_end as usize)
    }

    /// Entry `i`'s value.
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        let &(key_end, value_end) = self.ends.get(i)?;
        self.bytes.get(key_end as usize..value_end as usize)
    }

    /// The last entry's key.
    pub fn last_key(&self) -> Option<&[u8]> {
        self.key(self.len().checked_sub(1)?)
    }

    /// `Ok(position)` of `key`, or `Err(position)` where it would be inserted.
    pub fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key(mid).unwrap_or_default().cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// The number of leading entries whose keys satisfy `pred` (which must hold for a
    /// prefix of the entries, as `slice::partition_point` requires).
    pub fn partition_point(&self, pred: impl Fn(&[u8]) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.key(mid).unwrap_or_default()) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Moves the ends of entries `from..` by `delta` bytes.
    fn shift_ends(&mut self, from: usize, delta: isize) {
        for e in self.ends.get_mut(from..).unwrap_or_default() {
            e.0 = (e.0 as isize + delta) as u32;
            e.1 = (e.1 as isize + delta) as u32;
        }
    }

    /// Appends an entry (its key must sort after every key held).
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len() as u32;
        self.bytes.extend_from_slice(value);
        self.ends.push((key_end, self.bytes.len() as u32));
    }

    /// Makes room for `entries` more entries of `bytes` more bytes, growing each buffer by
    /// an eighth when it must grow, not doubling it: a leaf grows an entry at a time to a
    /// page's worth, and a doubled buffer would hold up to twice that for as long as the
    /// node lives (in the page cache, for one).
    fn make_room(&mut self, entries: usize, bytes: usize) {
        if self.bytes.capacity() - self.bytes.len() < bytes {
            self.bytes
                .reserve_exact(bytes.max(self.bytes.len() / 8 + 32));
        }
        if self.ends.capacity() - self.ends.len() < entries {
            self.ends
                .reserve_exact(entries.max(self.ends.len() / 8 + 2));
        }
    }

    /// Inserts an entry at position `i` (clamped to the length).
    pub fn insert(&mut self, i: usize, key: &[u8], value: &[u8]) {
        let i = i.min(self.len());
        let at = self.start(i);
        let added = key.len() + value.len();
        self.make_room(1, added);
        let old_len = self.bytes.len();
        self.bytes.resize(old_len + added, 0);
        self.bytes.copy_within(at..old_len, at + added);
        if let Some(room) = self.bytes.get_mut(at..at + added) {
            let (k, v) = room.split_at_mut(key.len());
            k.copy_from_slice(key);
            v.copy_from_slice(value);
        }
        self.shift_ends(i, added as isize);
        self.ends
            .insert(i, ((at + key.len()) as u32, (at + added) as u32));
    }

    /// Replaces entry `i`'s value, returning the old one (`None` past the end).
    pub fn replace_value(&mut self, i: usize, value: &[u8]) -> Option<Vec<u8>> {
        let &(key_end, value_end) = self.ends.get(i)?;
        let (key_end, value_end) = (key_end as usize, value_end as usize);
        self.make_room(0, value.len().saturating_sub(value_end - key_end));
        let old: Vec<u8> = self
            .bytes
            .splice(key_end..value_end, value.iter().copied())
            .collect();
        let delta = value.len() as isize - old.len() as isize;
        if let Some(e) = self.ends.get_mut(i) {
            e.1 = (key_end + value.len()) as u32;
        }
        self.shift_ends(i + 1, delta);
        Some(old)
    }

    /// Removes entry `i` (nothing past the end).
    pub fn remove(&mut self, i: usize) {
        let Some(&(_, value_end)) = self.ends.get(i) else {
            return;
        };
        let start = self.start(i);
        self.bytes.drain(start..value_end as usize);
        self.ends.remove(i);
        self.shift_ends(i, -((value_end as usize - start) as isize));
    }

    /// Splits off entries `at..` (clamped to the length) into a new set. This set gives
    /// back the room the others took (beyond an eighth to grow into).
    pub fn split_off(&mut self, at: usize) -> Entries {
        let at = at.min(self.len());
        let cut = self.start(at);
        let mut right = Entries {
            bytes: self.bytes.split_off(cut),
            ends: self.ends.split_off(at),
        };
        right.shift_ends(0, -(cut as isize));
        self.bytes.shrink_to(cut + cut / 8);
        self.ends.shrink_to(at + at / 8);
        right
    }

    /// Appends every entry of `other` (whose keys must all sort after these).
    pub fn append(&mut self, other: &Entries) {
        self.make_room(other.len(), other.bytes.len());
        let offset = self.bytes.len() as u32;
        self.bytes.extend_from_slice(&other.bytes);
        self.ends
            .extend(other.ends.iter().map(|&(k, v)| (k + offset, v + offset)));
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }

    /// Bytes of keys and values held.
    pub fn data_len(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes the two buffers take in memory.
    pub fn memory_size(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * std::mem::size_of::<(u32, u32)>()
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, V)> for Entries {
    /// Entries in the order given (which must be ascending by key).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Entries {
        let mut entries = Entries::new();
        for (k, v) in iter {
            entries.push(k.as_ref(), v.as_ref());
        }
        entries
    }
}

impl fmt::Debug for Entries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same changes applied to a vector of pairs, the obvious model.
    type Model = Vec<(Vec<u8>, Vec<u8>)>;

    fn same(e: &Entries, m: &Model) {
        assert_eq!(e.len(), m.len());
        let got: Model = e.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(&got, m);
        let back: Model = e
            .iter()
            .rev()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(back, m.iter().rev().cloned().collect::<Model>());
        assert_eq!(
            e.data_len(),
            m.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        );
        for (i, (k, v)) in m.iter().enumerate() {
            assert_eq!(e.search(k), Ok(i));
            assert_eq!(e.key(i), Some(k.as_slice()));
            assert_eq!(e.value(i), Some(v.as_slice()));
            assert_eq!(e.partition_point(|x| x < k.as_slice()), i);
            assert_eq!(e.partition_point(|x| x <= k.as_slice()), i + 1);
        }
        assert_eq!(e.get(m.len()), None);
        assert_eq!(e.last_key(), m.last().map(|(k, _)| k.as_slice()));
    }

    #[test]
    fn entries_change_as_a_vector_of_pairs_does() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut rand = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut e = Entries::new();
        let mut m: Model = Vec::new();
        for round in 0..3000 {
            let key = format!("k{:03}", rand(400)).into_bytes();
            let value = vec![round as u8; rand(6) as usize];
            match (rand(10), e.search(&key)) {
                (0..=5, Err(i)) => {
                    assert_eq!(i, m.partition_point(|(k, _)| *k < key));
                    e.insert(i, &key, &value);
                    m.insert(i, (key, value));
                }
                (0..=5, Ok(i)) => {
                    let old = e.replace_value(i, &value);
                    assert_eq!(old.as_ref(), m.get(i).map(|(_, v)| v));
                    if let Some(slot) = m.get_mut(i) {
                        slot.1 = value;
                    }
                }
                (6..=8, Ok(i)) => {
                    e.remove(i);
                    m.remove(i);
                }
                (6..=8, Err(i)) => assert_eq!(i, m.partition_point(|(k, _)| *k < key)),
                _ => {
                    // Split at a random point and join again.
                    let at = rand(m.len() as u64 + 1) as usize;
                    let right = e.split_off(at);
                    let mr = m.split_off(at);
                    same(&e, &m);
                    same(&right, &mr);
                    e.append(&right);
                    m.extend(mr);
                }
            }
            same(&e, &m);
        }
        assert!(m.len() > 100, "the model grew: {}", m.len());
        let collected: Entries = m.iter().map(|(k, v)| (k, v)).collect();
        assert_eq!(collected, e);
    }

    #[test]
    fn a_growing_leaf_holds_little_more_than_its_entries() {
        // What the entries need, and the eighth (and the few bytes) each buffer may grow by.
        let bound = |e: &Entries| {
            let need = e.data_len() + 8 * e.len();
            need + need / 8 + 64
        };
        let mut e = Entries::new();
        for i in 0..400u32 {
            let key = format!("brand_{:02}{:08}", i % 37, i.wrapping_mul(2_654_435_761));
            let at = e.search(key.as_bytes()).unwrap_err();
            e.insert(at, key.as_bytes(), b"");
            assert!(
                e.memory_size() <= bound(&e),
                "{} entries: {}",
                e.len(),
                e.memory_size()
            );
        }
        let right = e.split_off(150);
        for half in [&e, &right] {
            assert!(half.memory_size() <= bound(half), "{}", half.memory_size());
        }
    }
}
