//! Storage keys: a collection's 4-byte id (big-endian, so each collection is one
//! contiguous key range) followed by the document id's UTF-8 bytes.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_collection_then_id() {
        let a = encode(1, "zzz");
        let b = encode(2, "aaa");
        assert!(a < b);
        assert!(collection_start(2) <= b && b < collection_end(2).unwrap());
        assert_eq!(decode(&a), Some((1, "zzz")));
        assert_eq!(decode(b"ab"), None);
    }
}
