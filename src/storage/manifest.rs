//! The manifest: which segment files are live, in which order, and up to which WAL
//! sequence number their data reaches. Replaced atomically on every change (temp file,
//! fsync, rename, fsync the directory), so a crash leaves either the old or the new one.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::fs::write_atomic;

/// File name of the manifest in the data directory.
pub const FILE_NAME: &str = "MANIFEST";

/// The manifest's contents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Every WAL record with a sequence number up to this one is in a segment.
    pub flushed_seq: u64,
    /// The id the next new segment file gets.
    pub next_segment_id: u64,
    /// Live segment ids, newest first: a key's newest version is in the first one that
    /// holds it.
    pub segments: Vec<u64>,
    /// Documents per collection id in the segments (as of `flushed_seq`); the
    /// memtables hold the changes since (see [`crate::storage::Op::Count`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<u32, i64>,
}

impl Manifest {
    /// A fresh manifest for an empty data directory.
    pub fn new() -> Self {
        Manifest {
            format: 1,
            flushed_seq: 0,
            next_segment_id: 1,
            segments: Vec::new(),
            counts: BTreeMap::new(),
        }
    }

    /// Reads the manifest of `dir`, or None if there is none yet.
    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(FILE_NAME);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corruption(format!("{}: {e}", path.display())))?;
        if manifest.format != 1 {
            return Err(Error::Corruption(format!(
                "{}: unknown manifest format {}",
                path.display(),
                manifest.format
            )));
        }
        Ok(Some(manifest))
    }

    /// Writes the manifest into `dir`, atomically.
    pub fn store(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Internal(format!("encoding the manifest: {e}")))?;
        write_atomic(&dir.join(FILE_NAME), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), None);
        let mut m = Manifest::new();
        m.segments = vec![3, 2];
        m.flushed_seq = 42;
        m.store(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m));
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        assert!(matches!(
            Manifest::load(dir.path()),
            Err(Error::Corruption(_))
        ));
    }
}
