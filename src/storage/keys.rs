//! Storage keys: a collection's 4-byte id (big-endian, so each collection is one
//! contiguous key range) followed by the document id's UTF-8 bytes.
//!
//! A table whose primary key is an integer column names its documents by the
//! *ordered form* of the key ([`integer_id`]): ASCII text that sorts bytewise as the
//! integers sort, so its documents lie in key order and a key range is a byte range.

/// The id of the catalog's own collection.
pub const CATALOG_COLLECTION: u32 = 0;

/// Builds the key of document `id` in collection `collection`.
pub fn encode(collection: u32, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + id.len());
    key.extend_from_slice(&collection.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// Starts `key` over as the key of a document of `collection` whose id the caller then
/// appends (as [`encode`] lays it out).
pub fn start_into(collection: u32, key: &mut Vec<u8>) {
    key.clear();
    key.extend_from_slice(&collection.to_be_bytes());
}

/// The first key of a collection's range.
pub fn collection_start(collection: u32) -> Vec<u8> {
    collection.to_be_bytes().to_vec()
}

/// The first key after a collection's range (None for the last possible collection).
pub fn collection_end(collection: u32) -> Option<Vec<u8>> {
    collection.checked_add(1).map(|c| c.to_be_bytes().to_vec())
}

/// Splits a key into collection id and document id; None if it is not a valid key.
pub fn decode(key: &[u8]) -> Option<(u32, &str)> {
    let (prefix, id) = key.split_at_checked(4)?;
    let collection = u32::from_be_bytes(prefix.try_into().ok()?);
    Some((collection, std::str::from_utf8(id).ok()?))
}

/// The collection id of a key (0 for malformed keys, which never occur in stored data).
pub fn collection_of(key: &[u8]) -> u32 {
    decode(key).map(|(c, _)| c).unwrap_or(CATALOG_COLLECTION)
}

/// The ordered form of integer `n` as a document id: one length byte, then the
/// decimal digits. A non-negative number of `d` digits starts with `'P' + d` (`Q` to `d`);
/// a negative one with `'O' - d` (`N` down to `<`) followed by the nines' complement of
/// its magnitude's digits, so more digits sort lower. `-10` "M89" < `-5` "N4" < `0` "Q0" <
/// `7` "Q7" < `10` "R10".
pub fn integer_id(n: i64) -> String {
    let magnitude = n.unsigned_abs().to_string();
    let d = magnitude.len() as u8;
    let mut id = String::with_capacity(magnitude.len() + 1);
    if n >= 0 {
        id.push(char::from(b'P' + d));
        id.push_str(&magnitude);
    } else {
        id.push(char::from(b'O' - d));
        id.extend(magnitude.bytes().map(|b| char::from(b'9' - b + b'0')));
    }
    id
}

/// The integer an ordered-form id names (None if `id` is not one).
pub fn integer_of_id(id: &str) -> Option<i64> {
    let (&lead, digits) = id.as_bytes().split_first()?;
    let &first = digits.first()?;
    if digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let d = digits.len() as u8;
    if lead == b'P' + d && (d == 1 || first != b'0') {
        std::str::from_utf8(digits).ok()?.parse().ok()
    } else if lead == b'O' - d && first != b'9' {
        let magnitude: String = digits
            .iter()
            .map(|&b| char::from(b'9' - b + b'0'))
            .collect();
        let m: u64 = magnitude.parse().ok()?;
        0i64.checked_sub_unsigned(m)
    } else {
        None
    }
}

/// A key's first eight bytes as one big-endian number, zero-padded: keys whose heads
/// differ order as their heads do (they differ where the keys first do; a key that
/// ended there reads as a zero, below any byte but a zero, and a zero byte makes the
/// heads equal).
#[inline]
pub fn head(k: &[u8]) -> u64 {
    // One load where the key has eight bytes (bytes written one by one and read back as
    // a word would stall the load until the stores retire).
    if let Some(word) = k.first_chunk::<8>() {
        return u64::from_be_bytes(*word);
    }
    let mut held = [0u8; 8];
    for (h, b) in held.iter_mut().zip(k) {
        *h = *b;
    }
    u64::from_be_bytes(held)
}

/// `a.cmp(b)` given their [`head`]s: most pairs of storage keys are decided by the heads
/// alone, without reading the keys or calling `memcmp` (keys of different collections,
/// or of ids that differ early: what a point read meets when it checks which segments
/// and blocks can hold its key).
#[inline]
pub fn compare_headed(a: &[u8], a_head: u64, b: &[u8], b_head: u64) -> std::cmp::Ordering {
    match a_head.cmp(&b_head) {
        std::cmp::Ordering::Equal => a.cmp(b),
        order => order,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ordered-form ids sort as their integers and read back to them.
    #[test]
    fn integer_ids_sort_as_integers() {
        let numbers = [
            i64::MIN,
            -1_000_000_000_000,
            -100,
            -99,
            -10,
            -9,
            -5,
            -1,
            0,
            1,
            7,
            9,
            10,
            99,
            100,
            12_345,
            i64::MAX,
        ];
        let ids: Vec<String> = numbers.iter().map(|&n| integer_id(n)).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        for (n, id) in numbers.iter().zip(&ids) {
            assert_eq!(integer_of_id(id), Some(*n), "{id}");
        }
        assert_eq!(integer_id(-10), "M89");
        assert_eq!(integer_id(10), "R10");
        for bad in ["", "Q", "R1", "Q12", "x5", "5", "Qa", "R05", "N9"] {
            assert_eq!(integer_of_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_sort_by_collection_then_id() {
        let a = encode(1, "zzz");
        let b = encode(2, "aaa");
        assert!(a < b);
        assert!(collection_start(2) <= b && b < collection_end(2).unwrap());
        assert_eq!(decode(&a), Some((1, "zzz")));
        assert_eq!(decode(b"ab"), None);
    }

    proptest::proptest! {
        #[test]
        fn compare_orders_keys_as_bytes_do(
            a in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0x7f, 0x80, 0xff]), 0..12),
            b in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0x7f, 0x80, 0xff]), 0..12),
        ) {
            proptest::prop_assert_eq!(compare_headed(&a, head(&a), &b, head(&b)), a.cmp(&b));
            proptest::prop_assert_eq!(
                compare_headed(&a, head(&a), &a, head(&a)),
                std::cmp::Ordering::Equal
            );
        }
    }
}
