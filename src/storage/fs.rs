//! File-system helpers that durability depends on: atomic replacement of a small file and
//! fsync of a directory after entries in it were created, renamed or removed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Fsyncs a directory so that the creation, rename or removal of its entries is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))
}

/// Replaces `path` with `contents` atomically: temp file, fsync, rename, fsync directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Internal(format!("{} has no parent", path.display())))?;
    let tmp = path.with_extension("tmp");
    let ctx = |what: &str| format!("{what} {}", tmp.display());
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| Error::io(ctx("creating"), e))?;
    file.write_all(contents)
        .map_err(|e| Error::io(ctx("writing"), e))?;
    file.sync_all().map_err(|e| Error::io(ctx("syncing"), e))?;
    drop(file);
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::io(format!("renaming {} into place", tmp.display()), e))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_contents() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("MANIFEST");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!dir.path().join("MANIFEST.tmp").exists());
    }
}
