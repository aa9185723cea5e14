//! Compaction: merging segments so that reads stay fast and deleted data leaves the disk.
//!
//! The policy is **size-tiered**: segments of similar size (within a factor) are merged
//! once there are enough of them. We chose it over leveled compaction because TissDB's
//! first workloads are write-heavy document ingestion, where size-tiered writes each byte
//! O(log n) times instead of leveled's O(fan-out · levels), and because documents are
//! read mostly by id, where bloom filters make the extra segments cheap to skip. The
//! space and read cost of size-tiered is bounded by a hard cap on the segment count, past
//! which the cheapest adjacent run is merged whatever the sizes.
//!
//! [`policy`] decides, as a pure function of segment sizes; [`worker`] does the I/O.

pub mod policy;
pub mod worker;

pub use policy::{Choice, PolicyOptions, choose};
