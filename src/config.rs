//! `Config`: every setting of the server with its default, in one place.
//!
//! Settings are layered: the defaults below, then a TOML file (`--config FILE`, flat
//! `key = value` lines using the names below), then `TISSDB_<NAME>` environment variables
//! (`TISSDB_MEMTABLE_SIZE=8MiB`), then command-line flags. Sizes accept a plain number of
//! bytes or a number with `KiB`, `MiB`, `GiB` (or `KB`, `MB`, `GB`, meaning the same).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How a setting's text becomes its value.
trait Setting: Sized {
    fn parse_setting(text: &str) -> std::result::Result<Self, String>;
}

impl Setting for String {
    fn parse_setting(text: &str) -> std::result::Result<Self, String> {
        Ok(text.to_string())
    }
}

impl Setting for PathBuf {
    fn parse_setting(text: &str) -> std::result::Result<Self, String> {
        if text.is_empty() {
            return Err("empty path".into());
        }
        Ok(PathBuf::from(text))
    }
}

impl Setting for usize {
    fn parse_setting(text: &str) -> std::result::Result<Self, String> {
        let n = parse_size(text)?;
        usize::try_from(n).map_err(|_| format!("{n} is too large"))
    }
}

impl Setting for u64 {
    fn parse_setting(text: &str) -> std::result::Result<Self, String> {
        parse_size(text)
    }
}

impl Setting for bool {
    fn parse_setting(text: &str) -> std::result::Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Ok(true),
            "false" | "off" | "no" | "0" => Ok(false),
            _ => Err(format!("expected true or false, got {text:?}")),
        }
    }
}

/// Parses `123`, `64KiB`, `8MiB`, `1GiB` (also `KB`/`MB`/`GB`/`K`/`M`/`G`, all powers of 1024).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a number, got {text:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large"))
}

macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr, )*) => {
        /// Every setting of a TissDB server. See the module doc for how they are layered.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Config {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $( $field: $default, )* }
            }
        }

        impl Config {
            /// The names of all settings, as used in the file and (upper-cased, prefixed
            /// with `TISSDB_`) in the environment.
            pub const KEYS: &'static [&'static str] = &[$( stringify!($field), )*];

            /// Sets one setting from its text form.
            pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
                match key {
                    $( stringify!($field) => {
                        self.$field = <$ty as Setting>::parse_setting(value)
                            .map_err(|e| Error::Config(format!("{key}: {e}")))?;
                    } )*
                    _ => return Err(Error::Config(format!("unknown setting {key:?}"))),
                }
                Ok(())
            }
        }
    };
}

/// Largest accepted `allocator_purge_delay_ms`: an hour.
pub const MAX_ALLOCATOR_PURGE_DELAY_MS: u64 = 3_600_000;

/// Largest accepted `commit_delay`, in microseconds (PostgreSQL's bound too).
pub const MAX_COMMIT_DELAY_US: u64 = 100_000;

settings! {
    /// Directory holding the WAL, segments and manifest.
    data_dir: PathBuf = PathBuf::from("./tissdb-data"),
    /// Address of the PostgreSQL wire listener.
    pg_addr: String = "127.0.0.1:5433".to_string(),
    /// Address of the REST listener.
    http_addr: String = "127.0.0.1:8080".to_string(),
    /// Memtable size at which it is frozen and flushed to a segment (counted as
    /// `Memtable::size` counts: about 200 bytes for a row of four columns).
    memtable_size: u64 = 24 << 20,
    /// Frozen memtables waiting for flush before writers are held back.
    max_frozen_memtables: usize = 4,
    /// Target uncompressed size of a segment data block.
    block_size: u64 = 32 << 10,
    /// Capacity of the LRU cache of decoded blocks (counted in decoded bytes); as large as
    /// PostgreSQL's default shared_buffers.
    block_cache_size: u64 = 128 << 20,
    /// LRU cache of decoded index pages, shared by every index file, counted in the
    /// memory the decoded pages take (a leaf: its keys and values and 8 bytes an entry).
    index_cache_size: u64 = 64 << 20,
    /// Documents an index build reads between progress lines in the log.
    index_build_progress: u64 = 100_000,
    /// zstd compression level of segment blocks.
    compression_level: usize = 3,
    /// Size at which the WAL moves on to a new file.
    wal_segment_size: u64 = 64 << 20,
    /// Group commit's delay, in microseconds: when the last WAL write carried the
    /// commits of several clients, the next waits up to this long for half as many to
    /// join it (one write for several, less CPU per commit). A lone client is never
    /// delayed. 0 writes as soon as the previous write is done.
    commit_delay: u64 = 100,
    /// Size-tiered compaction: how many similar-sized segments make a merge.
    compaction_min_merge: usize = 4,
    /// Size-tiered compaction: segments of one tier differ in size by at most this factor.
    compaction_size_ratio: usize = 4,
    /// Compaction merges regardless of sizes when there are more segments than this.
    compaction_max_segments: usize = 12,
    /// Connections each front-end (PostgreSQL wire, REST) serves at once. One more is
    /// answered and closed: the wire's with 53300 ("sorry, too many clients already"),
    /// REST's with 503 and a JSON error (53300).
    max_connections: usize = 1000,
    /// Largest accepted request body (REST) in bytes.
    max_body_size: u64 = 16 << 20,
    /// Largest REST import body in bytes (`POST /<c>` or `/<c>/_import` with CSV,
    /// NDJSON, a JSON array or `<documents>`): an import is one write of all its
    /// documents, so this bounds what one all-or-none import holds in memory (about 70
    /// times the body for narrow CSV rows: 26 MB of 1M rows peaked at 1.9 GB).
    max_import_size: u64 = 16 << 20,
    /// Deepest nesting of arrays and objects accepted in a document.
    max_depth: usize = 64,
    /// Largest encoded document the engine stores.
    max_document_size: u64 = 16 << 20,
    /// Longest accepted SQL statement text, in bytes.
    max_query_size: u64 = 1 << 20,
    /// Memory one sort, aggregation or DISTINCT may use.
    query_memory_limit: u64 = 256 << 20,
    /// Rounds a `WITH RECURSIVE` query may run (54000 beyond).
    max_recursion_iterations: u64 = 10_000,
    /// Bytes of documents one transaction may write before COMMIT (54000 beyond).
    max_transaction_size: u64 = 64 << 20,
    /// Bytes of data one `COPY ... FROM STDIN` may send (54000 beyond); the rows are held
    /// in memory, encoded, until they are all validated (a bulk load holds their ids and
    /// at most three 8 MiB runs).
    max_copy_size: u64 = 256 << 20,
    /// Seconds a transaction may stay open; past it, it is rolled back (25P04).
    max_transaction_duration: u64 = 600,
    /// Seconds a REST transaction may sit unused before it is rolled back.
    transaction_idle_timeout: u64 = 60,
    /// Seconds a REST connection may take to send a request's headers, counted from
    /// when the server waits for them (an idle keep-alive connection waits too); past
    /// it, the connection is closed. A client that never finishes its headers cannot
    /// hold one of the `max_connections` slots for ever.
    http_idle_timeout: u64 = 60,
    /// Default number of documents in one page of a collection listing.
    default_page_size: usize = 100,
    /// Largest number of documents in one page of a collection listing.
    max_page_size: usize = 10_000,
    /// Whether the kernel may back the server's memory with transparent huge pages (where
    /// it is set to `always`). Off by default, as Redis and MongoDB advise: a 2 MiB page
    /// is resident as soon as any of it is touched, so the allocator's partly used
    /// regions stay resident whole (the server after a 100k-row COPY: 78 MiB with them,
    /// 37 MiB without); reads by key cost a few percent more CPU without them.
    transparent_huge_pages: bool = false,
    /// Whether each connection thread runs on one CPU of its own (the threads take the
    /// CPUs the server may run on in order). A connection moves to the thread running
    /// where its client runs (`tissdb_net::follow`); pinned, a lone client's thread and
    /// its client take turns on one core instead of waking each other across cores.
    /// A thread whose lone connection only writes (and so waits for the disk on it) runs
    /// loose, so that the disk's completion wakes it where the kernel likes (the CPU that
    /// takes the disk's interrupts), and is pinned again once the connection reads.
    /// Measured at 1 client (2 cores, point reads / inserts per second): pinned 60-71k /
    /// 4.8-5.9k, unpinned 12-47k (from one run to the next) / 5.2-6.2k.
    pin_connection_threads: bool = true,
    /// Milliseconds the memory allocator (mimalloc) keeps memory the server freed before
    /// it gives it back to the kernel. mimalloc 3's own default is 1000: what a bulk load
    /// or an index build freed stayed resident for a second, longer if the server went
    /// quiet (a 100k-row COPY and an index build left 54 MiB resident, 45 MiB at 10 ms).
    /// Too short costs CPU: at 10 ms (mimalloc 2's default) a hash join over 100k rows
    /// run back to back took 27% more, faulting its tables' memory in again each time;
    /// at 100 ms no more than at 1000. Left as it is when the `MIMALLOC_PURGE_DELAY`
    /// environment variable is set.
    allocator_purge_delay_ms: u64 = 100,
    /// Log filter (tracing-subscriber EnvFilter syntax), e.g. `info` or `tissdb=debug`.
    log: String = "info".to_string(),
}

impl Config {
    /// Reads a TOML file of `key = value` settings on top of `self`.
    pub fn apply_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        self.apply_toml(&text)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Applies settings from TOML text.
    pub fn apply_toml(&mut self, text: &str) -> Result<()> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::Config(e.to_string()))?;
        for (key, value) in table {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(Error::Config(format!(
                        "{key}: expected a string, integer or boolean, got {}",
                        other.type_str()
                    )));
                }
            };
            self.set(&key, &text)?;
        }
        Ok(())
    }

    /// Applies every `TISSDB_<NAME>` variable found in `vars`.
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Result<()> {
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("TISSDB_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if !Self::KEYS.contains(&key.as_str()) {
                return Err(Error::Config(format!(
                    "unknown environment variable {name} (settings: {})",
                    Self::KEYS.join(", ")
                )));
            }
            self.set(&key, &value)?;
        }
        Ok(())
    }

    /// Rejects values that cannot work.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("memtable_size", self.memtable_size),
            ("block_size", self.block_size),
            ("wal_segment_size", self.wal_segment_size),
            ("max_body_size", self.max_body_size),
            ("max_import_size", self.max_import_size),
            ("max_document_size", self.max_document_size),
            ("max_depth", self.max_depth as u64),
            ("max_query_size", self.max_query_size),
            ("query_memory_limit", self.query_memory_limit),
            ("max_transaction_size", self.max_transaction_size),
            ("max_copy_size", self.max_copy_size),
            ("max_recursion_iterations", self.max_recursion_iterations),
            ("max_transaction_duration", self.max_transaction_duration),
            ("transaction_idle_timeout", self.transaction_idle_timeout),
            ("http_idle_timeout", self.http_idle_timeout),
            ("max_page_size", self.max_page_size as u64),
            ("default_page_size", self.default_page_size as u64),
            ("max_frozen_memtables", self.max_frozen_memtables as u64),
            ("max_connections", self.max_connections as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::Config(format!("{name} must be greater than 0")));
            }
        }
        if self.compaction_min_merge < 2 {
            return Err(Error::Config(
                "compaction_min_merge must be at least 2".into(),
            ));
        }
        if self.compaction_size_ratio < 1 {
            return Err(Error::Config(
                "compaction_size_ratio must be at least 1".into(),
            ));
        }
        if self.compaction_max_segments < self.compaction_min_merge {
            return Err(Error::Config(
                "compaction_max_segments must be at least compaction_min_merge".into(),
            ));
        }
        if self.allocator_purge_delay_ms > MAX_ALLOCATOR_PURGE_DELAY_MS {
            return Err(Error::Config(format!(
                "allocator_purge_delay_ms must be at most {MAX_ALLOCATOR_PURGE_DELAY_MS} (an hour)"
            )));
        }
        if self.commit_delay > MAX_COMMIT_DELAY_US {
            return Err(Error::Config(format!(
                "commit_delay must be at most {MAX_COMMIT_DELAY_US} (microseconds)"
            )));
        }
        if self.compression_level > 22 {
            return Err(Error::Config("compression_level must be 0..=22".into()));
        }
        if self.default_page_size > self.max_page_size {
            return Err(Error::Config(
                "default_page_size must not exceed max_page_size".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_file_then_env() {
        let mut c = Config::default();
        c.apply_toml("memtable_size = \"8MiB\"\nhttp_addr = \"127.0.0.1:9000\"\nmax_depth = 10")
            .unwrap();
        assert_eq!(c.memtable_size, 8 << 20);
        assert_eq!(c.http_addr, "127.0.0.1:9000");
        assert_eq!(c.max_depth, 10);
        c.apply_env([
            ("TISSDB_MAX_DEPTH".to_string(), "20".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ])
        .unwrap();
        assert_eq!(c.max_depth, 20);
        c.validate().unwrap();
    }

    #[test]
    fn rejects_unknown_and_bad_values() {
        let mut c = Config::default();
        assert!(c.apply_toml("nonsense = 1").is_err());
        assert!(c.apply_toml("memtable_size = \"12 parsecs\"").is_err());
        assert!(
            c.apply_env([("TISSDB_NOPE".to_string(), "1".to_string())])
                .is_err()
        );
        c.set("block_size", "0").unwrap();
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.set("commit_delay", "100001").unwrap();
        assert!(c.validate().is_err());
        c.set("commit_delay", "0").unwrap();
        c.validate().unwrap();
        c.set("allocator_purge_delay_ms", "3600001").unwrap();
        assert!(c.validate().is_err());
        c.set("allocator_purge_delay_ms", "0").unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("2 GB").unwrap(), 2 << 30);
        assert!(parse_size("x").is_err());
    }
}
