//! The compaction worker's I/O: merge input segments into one new segment.

use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::storage::merge::{MergeIter, Source};
use crate::storage::segment::{Segment, SegmentWriter, Stored, StoredIter, WrittenSegment};

/// What to keep while merging.
pub struct MergeRules<'a> {
    /// True when the inputs include the oldest segment: then nothing older can hold a
    /// version that a tombstone must hide, and tombstones are dropped.
    pub purge_tombstones: bool,
    /// Whether a key still belongs to a live collection.
    pub is_live: &'a (dyn Fn(&[u8]) -> bool + Send + Sync),
}

/// Merges `inputs` (newest first) into segment `id` in `dir`. Returns None (and leaves no
/// file) when nothing survives the merge. The documents of XML blocks are carried as
/// the elements they were written as, not decoded and encoded again.
pub fn merge(
    inputs: &[Arc<Segment>],
    dir: &Path,
    id: u64,
    block_size: usize,
    level: i32,
    rules: &MergeRules<'_>,
) -> Result<Option<WrittenSegment>> {
    let sources: Vec<Source<Stored>> = inputs
        .iter()
        .map(|s| Box::new(StoredIter::new(s.clone())) as Source<Stored>)
        .collect();
    let mut writer = SegmentWriter::create(dir, id, block_size, level)?;
    for entry in MergeIter::new(sources) {
        let entry = entry?;
        if !(rules.is_live)(&entry.key) {
            continue;
        }
        if entry.doc.is_none() && rules.purge_tombstones {
            continue;
        }
        writer.add_stored(entry.key, entry.doc)?;
    }
    if writer.entries() == 0 {
        drop(writer);
        let path = dir.join(crate::storage::segment::file_name(id));
        std::fs::remove_file(&path)
            .map_err(|e| crate::error::Error::io(format!("removing {}", path.display()), e))?;
        return Ok(None);
    }
    writer.finish().map(Some)
}
