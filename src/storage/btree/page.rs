//! Page layout: fixed-size pages, slotted for variable-length keys and values, each
//! checksummed together with its own page number, decoded into [`Node`]s.
//!
//! ```text
//! page   = crc32c(page no u64 LE | bytes 4..) u32 | kind u8 | 0 u8 | count u16 | word u64
//!        | slot u16 * count | free space | cells (packed from the end of the page)
//! leaf   : word = 0,          cell = key len u16 | value len u16 | key | value
//! branch : word = child 0,    cell = key len u16 | child u64 | key   (child i+1 >= key i)
//! free   : word = next page,  slot area holds count page numbers u64 instead of slots
//! ```
//!
//! All integers are little-endian. Including the page number in the checksum catches a
//! page written to the wrong place as well as a flipped bit.

pub use super::leaf::Entries;
use crate::error::{Error, Result};

/// Size of every page in the file.
pub const PAGE_SIZE: usize = 4096;
/// Bytes before the slot array.
pub const HEADER: usize = 16;
/// Longest key accepted; longer ones are `Error::LimitExceeded`.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest value accepted; longer ones are `Error::LimitExceeded`. Together with
/// [`MAX_KEY_LEN`] it keeps every entry under half a page, so a split always fits.
pub const MAX_VALUE_LEN: usize = 512;
// Two entries of the largest size fit one page, so a split always leaves halves that fit.
const _: () = assert!(2 * (MAX_KEY_LEN + MAX_VALUE_LEN + 6) <= PAGE_SIZE - HEADER);

/// Page numbers a free-list page holds.
pub const FREE_PER_PAGE: usize = (PAGE_SIZE - HEADER) / 8;

const KIND_LEAF: u8 = 1;
const KIND_BRANCH: u8 = 2;
const KIND_FREE: u8 = 3;

/// A separator key as a decoded branch holds it: inline up to 32 bytes (an index entry of
/// a short value and id), so that a search of a branch reads its keys where they lie, not
/// each from its own allocation (leaves pack theirs, see [`Entries`]).
pub type Key = smallvec::SmallVec<[u8; 32]>;

/// A decoded tree page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// Entries in strictly ascending key order.
    Leaf { entries: Entries },
    /// `children.len() == keys.len() + 1`; child `i` holds keys in `[keys[i-1], keys[i])`.
    Branch { keys: Vec<Key>, children: Vec<u64> },
}

impl Node {
    /// An empty leaf (the root of an empty tree).
    pub fn empty_leaf() -> Node {
        Node::Leaf {
            entries: Entries::new(),
        }
    }

    /// Bytes the node takes when encoded; it fits a page if this is <= [`PAGE_SIZE`].
    pub fn encoded_size(&self) -> usize {
        match self {
            Node::Leaf { entries } => {
                HEADER + entries.data_len() + entries.len() * leaf_entry_size(&[], &[])
            }
            Node::Branch { keys, .. } => {
                HEADER + keys.iter().map(|k| branch_key_size(k)).sum::<usize>()
            }
        }
    }

    /// Bytes the decoded node takes in memory: its vectors (a branch's keys that lie
    /// inline are in them), a branch's keys too long to lie inline, and the node itself
    /// behind its `Arc`. What the page cache counts a page as: for a leaf, its keys and
    /// values and 8 bytes of offsets an entry (less than the page when it is not full).
    pub fn memory_size(&self) -> usize {
        let spilled = |k: &Key| if k.spilled() { k.capacity() } else { 0 };
        // The Arc's two counters.
        let fixed = std::mem::size_of::<Node>() + 2 * std::mem::size_of::<usize>();
        fixed
            + match self {
                Node::Leaf { entries } => entries.memory_size(),
                Node::Branch { keys, children } => {
                    keys.capacity() * std::mem::size_of::<Key>()
                        + keys.iter().map(spilled).sum::<usize>()
                        + children.capacity() * std::mem::size_of::<u64>()
                }
            }
    }

    pub fn fits(&self) -> bool {
        self.encoded_size() <= PAGE_SIZE
    }

    /// Entries of a leaf, or children of a branch.
    pub fn is_empty(&self) -> bool {
        match self {
            Node::Leaf { entries } => entries.is_empty(),
            Node::Branch { children, .. } => children.is_empty(),
        }
    }
}

/// Encoded bytes of one leaf entry (slot and cell).
pub fn leaf_entry_size(key: &[u8], value: &[u8]) -> usize {
    2 + 4 + key.len() + value.len()
}

/// Encoded bytes of one branch key (slot and cell).
pub fn branch_key_size(key: &[u8]) -> usize {
    2 + 2 + 8 + key.len()
}

fn put_u8(page: &mut [u8], at: usize, v: u8) {
    if let Some(b) = page.get_mut(at) {
        *b = v;
    }
}

fn put_u16(page: &mut [u8], at: usize, v: usize) {
    if let Some(s) = page.get_mut(at..at + 2) {
        s.copy_from_slice(&(v as u16).to_le_bytes());
    }
}

fn put_u64(page: &mut [u8], at: usize, v: u64) {
    if let Some(s) = page.get_mut(at..at + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_bytes(page: &mut [u8], at: usize, b: &[u8]) {
    if let Some(s) = page.get_mut(at..at + b.len()) {
        s.copy_from_slice(b);
    }
}

fn get_u16(page: &[u8], at: usize) -> usize {
    let mut b = [0u8; 2];
    if let Some(s) = page.get(at..at + 2) {
        b.copy_from_slice(s);
    }
    usize::from(u16::from_le_bytes(b))
}

fn get_u64(page: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = page.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

fn checksum(page_no: u64, page: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&page_no.to_le_bytes());
    crc32c::crc32c_append(crc, page.get(4..).unwrap_or(&[]))
}

fn seal(page_no: u64, page: &mut [u8]) {
    let crc = checksum(page_no, page);
    put_bytes(page, 0, &crc.to_le_bytes());
}

/// Checks a raw page's length and checksum.
pub fn verify(page_no: u64, page: &[u8]) -> Result<()> {
    if page.len() != PAGE_SIZE {
        return Err(Error::Corruption(format!(
            "B-tree page {page_no}: {} bytes, expected {PAGE_SIZE}",
            page.len()
        )));
    }
    let mut b = [0u8; 4];
    b.copy_from_slice(page.get(..4).unwrap_or(&[0; 4]));
    let stored = u32::from_le_bytes(b);
    let computed = checksum(page_no, page);
    if stored != computed {
        return Err(Error::Corruption(format!(
            "B-tree page {page_no}: checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    Ok(())
}

/// Encodes a node as page `page_no`. The node must fit (checked by the caller).
pub fn encode_node(page_no: u64, node: &Node) -> Result<Vec<u8>> {
    if !node.fits() {
        return Err(Error::Internal(format!(
            "B-tree node of {} bytes does not fit page {page_no}",
            node.encoded_size()
        )));
    }
    let mut page = vec![0u8; PAGE_SIZE];
    let mut end = PAGE_SIZE;
    match node {
        Node::Leaf { entries } => {
            put_u8(&mut page, 4, KIND_LEAF);
            put_u16(&mut page, 6, entries.len());
            for (i, (k, v)) in entries.iter().enumerate() {
                end -= 4 + k.len() + v.len();
                put_u16(&mut page, HEADER + 2 * i, end);
                put_u16(&mut page, end, k.len());
                put_u16(&mut page, end + 2, v.len());
                put_bytes(&mut page, end + 4, k);
                put_bytes(&mut page, end + 4 + k.len(), v);
            }
        }
        Node::Branch { keys, children } => {
            if children.len() != keys.len() + 1 {
                return Err(Error::Internal(format!(
                    "B-tree branch for page {page_no} with {} keys and {} children",
                    keys.len(),
                    children.len()
                )));
            }
            put_u8(&mut page, 4, KIND_BRANCH);
            put_u16(&mut page, 6, keys.len());
            put_u64(&mut page, 8, children.first().copied().unwrap_or(0));
            for (i, (k, c)) in keys.iter().zip(children.iter().skip(1)).enumerate() {
                end -= 2 + 8 + k.len();
                put_u16(&mut page, HEADER + 2 * i, end);
                put_u16(&mut page, end, k.len());
                put_u64(&mut page, end + 2, *c);
                put_bytes(&mut page, end + 10, k);
            }
        }
    }
    seal(page_no, &mut page);
    Ok(page)
}

/// Decodes and checks page `page_no`: checksum, kind, every slot and cell in bounds.
pub fn decode_node(page_no: u64, page: &[u8]) -> Result<Node> {
    verify(page_no, page)?;
    let corrupt = |what: String| Error::Corruption(format!("B-tree page {page_no}: {what}"));
    let kind = page.get(4).copied().unwrap_or(0);
    let count = get_u16(page, 6);
    let slots_end = HEADER + 2 * count;
    if slots_end > PAGE_SIZE {
        return Err(corrupt(format!("{count} slots do not fit")));
    }
    let cell = |i: usize, fixed: usize| -> Result<usize> {
        let at = get_u16(page, HEADER + 2 * i);
        if at < slots_end || at + fixed > PAGE_SIZE {
            return Err(corrupt(format!("slot {i} points to {at}")));
        }
        Ok(at)
    };
    let slice = |at: usize, len: usize, i: usize| -> Result<&[u8]> {
        page.get(at..at + len)
            .ok_or_else(|| corrupt(format!("cell {i} runs past the page")))
    };
    match kind {
        KIND_LEAF => {
            let mut cells = Vec::with_capacity(count);
            let mut bytes = 0;
            for i in 0..count {
                let at = cell(i, 4)?;
                let (kl, vl) = (get_u16(page, at), get_u16(page, at + 2));
                if kl > MAX_KEY_LEN || vl > MAX_VALUE_LEN {
                    return Err(corrupt(format!("cell {i} key {kl} / value {vl} bytes")));
                }
                cells.push((slice(at + 4, kl, i)?, slice(at + 4 + kl, vl, i)?));
                bytes += kl + vl;
            }
            let mut entries = Entries::with_capacity(count, bytes);
            for (k, v) in cells {
                entries.push(k, v);
            }
            Ok(Node::Leaf { entries })
        }
        KIND_BRANCH => {
            let mut keys = Vec::with_capacity(count);
            let mut children = Vec::with_capacity(count + 1);
            children.push(get_u64(page, 8));
            for i in 0..count {
                let at = cell(i, 10)?;
                let kl = get_u16(page, at);
                if kl > MAX_KEY_LEN {
                    return Err(corrupt(format!("cell {i} key {kl} bytes")));
                }
                children.push(get_u64(page, at + 2));
                keys.push(Key::from_slice(slice(at + 10, kl, i)?));
            }
            Ok(Node::Branch { keys, children })
        }
        other => Err(corrupt(format!("kind {other} is not a tree page"))),
    }
}

/// Encodes a free-list page holding `pages` (at most [`FREE_PER_PAGE`]), then `next`.
pub fn encode_free(page_no: u64, pages: &[u64], next: u64) -> Vec<u8> {
    let mut page = vec![0u8; PAGE_SIZE];
    put_u8(&mut page, 4, KIND_FREE);
    let pages = pages.get(..FREE_PER_PAGE.min(pages.len())).unwrap_or(&[]);
    put_u16(&mut page, 6, pages.len());
    put_u64(&mut page, 8, next);
    for (i, p) in pages.iter().enumerate() {
        put_u64(&mut page, HEADER + 8 * i, *p);
    }
    seal(page_no, &mut page);
    page
}

/// Decodes a free-list page into its page numbers and the next free-list page (0: none).
pub fn decode_free(page_no: u64, page: &[u8]) -> Result<(Vec<u64>, u64)> {
    verify(page_no, page)?;
    let kind = page.get(4).copied().unwrap_or(0);
    let count = get_u16(page, 6);
    if kind != KIND_FREE || count > FREE_PER_PAGE {
        return Err(Error::Corruption(format!(
            "B-tree page {page_no}: expected a free-list page, found kind {kind} with {count} entries"
        )));
    }
    let pages = (0..count).map(|i| get_u64(page, HEADER + 8 * i)).collect();
    Ok((pages, get_u64(page, 8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(n: usize) -> Node {
        Node::Leaf {
            entries: (0..n)
                .map(|i| (format!("key{i:04}").into_bytes(), vec![i as u8; i % 7]))
                .collect(),
        }
    }

    #[test]
    fn nodes_round_trip() {
        for node in [
            Node::empty_leaf(),
            leaf(1),
            leaf(100),
            Node::Branch {
                keys: vec![],
                children: vec![7],
            },
            Node::Branch {
                keys: vec![Key::from_slice(b"m"), Key::from_elem(0, MAX_KEY_LEN)],
                children: vec![3, 4, u64::MAX],
            },
        ] {
            let page = encode_node(9, &node).unwrap();
            assert_eq!(page.len(), PAGE_SIZE);
            assert_eq!(decode_node(9, &page).unwrap(), node);
        }
        let big = Node::Leaf {
            entries: [1, 2]
                .map(|b| (vec![b; MAX_KEY_LEN], vec![2; MAX_VALUE_LEN]))
                .into_iter()
                .collect(),
        };
        assert_eq!(decode_node(3, &encode_node(3, &big).unwrap()).unwrap(), big);
        assert!(encode_node(1, &leaf(400)).is_err(), "too big for a page");
    }

    #[test]
    fn free_pages_round_trip() {
        let pages: Vec<u64> = (10..10 + FREE_PER_PAGE as u64).collect();
        let page = encode_free(5, &pages, 77);
        assert_eq!(decode_free(5, &page).unwrap(), (pages, 77));
        assert!(decode_node(5, &page).is_err(), "not a tree page");
        assert!(decode_free(5, &encode_node(5, &leaf(2)).unwrap()).is_err());
    }

    #[test]
    fn checksums_catch_flips_and_misplaced_pages() {
        let page = encode_node(4, &leaf(20)).unwrap();
        for at in [0, 4, 6, 100, PAGE_SIZE - 1] {
            let mut bad = page.clone();
            bad[at] ^= 0x10;
            match decode_node(4, &bad) {
                Err(Error::Corruption(m)) => {
                    assert!(m.contains("page 4") && m.contains("stored"), "{m}")
                }
                other => panic!("flip at {at}: {other:?}"),
            }
        }
        assert!(matches!(decode_node(5, &page), Err(Error::Corruption(_))));
        assert!(matches!(
            decode_node(4, &page[..100]),
            Err(Error::Corruption(_))
        ));
    }

    #[test]
    fn sealed_garbage_is_rejected_without_panics() {
        // Pages with valid checksums but nonsense inside (as a buggy writer might make).
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..2000 {
            let mut page = vec![0u8; PAGE_SIZE];
            for b in page.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            page[4] = 1 + (round % 3) as u8;
            page[7] = (round % 4) as u8;
            seal(1, &mut page);
            let _ = decode_node(1, &page);
            let _ = decode_free(1, &page);
        }
    }
}
