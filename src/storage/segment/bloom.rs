//! A bloom filter over a segment's keys, so point reads skip segments without the key.
//!
//! The filter is cache-line blocked: a key's 64-bit xxh3 hash picks one 64-byte line
//! (its high half, by multiply-shift), and its low half, stepped by a multiplicative
//! hash, the bits set in that line. A lookup touches one cache line, where a filter
//! whose probes spread over the whole array misses the cache once per probe; with 10
//! bits per key and 6 probes the false-positive rate is about 1%.
//!
//! Encoded as one byte, `0x80 | probes`, then the lines. Segments written before the
//! filter was blocked begin with the probe count alone (1 to 30): their bits, set by
//! double hashing (Kirsch–Mitzenmacher) over the whole array, are still read.

use crate::error::{Error, Result};

const BITS_PER_KEY: usize = 10;
const PROBES: u32 = 6;
/// Marks the encoding of a blocked filter in its first byte.
const BLOCKED: u8 = 0x80;
const LINE_BITS: u32 = 512;

/// The hash a bloom filter uses for `key`.
pub fn hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// The word of its line a bit (0 to 511) is in.
fn word_of(bit: u32) -> usize {
    (bit >> 6) as usize & 7
}

/// One cache line of a blocked filter.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(64))]
pub struct Line([u64; 8]);

/// A built bloom filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Bloom {
    /// One line per key's probes (every filter written now).
    Blocked { lines: Vec<Line>, probes: u32 },
    /// Probes over the whole array (segments written before the blocked filter).
    Spread { bits: Vec<u8>, probes: u32 },
}

impl Bloom {
    /// Builds a filter holding `hashes`.
    pub fn build(hashes: &[u64]) -> Bloom {
        let nbits = (hashes.len() * BITS_PER_KEY).max(LINE_BITS as usize);
        let mut lines = vec![Line::default(); nbits.div_ceil(LINE_BITS as usize)];
        let n = lines.len();
        for &h in hashes {
            let Some(line) = lines.get_mut(Self::line_of(h, n)) else {
                continue;
            };
            for bit in Self::line_bits(h, PROBES) {
                if let Some(word) = line.0.get_mut(word_of(bit)) {
                    *word |= 1 << (bit % 64);
                }
            }
        }
        Bloom::Blocked {
            lines,
            probes: PROBES,
        }
    }

    /// The line of `n` that holds a hash's bits.
    fn line_of(h: u64, n: usize) -> usize {
        (((h >> 32) * n as u64) >> 32) as usize
    }

    /// The bits (0 to 511) a hash sets in its line.
    fn line_bits(h: u64, probes: u32) -> impl Iterator<Item = u32> {
        let mut x = h as u32;
        (0..probes).map(move |_| {
            let bit = x >> (32 - 9);
            x = x.wrapping_mul(0x9e37_79b9);
            bit
        })
    }

    fn spread_positions(h: u64, probes: u32, nbits: usize) -> impl Iterator<Item = usize> {
        let h1 = h;
        let h2 = h.rotate_left(32) | 1;
        (0..u64::from(probes))
            .map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % nbits as u64) as usize)
    }

    /// False if `hash` is certainly absent; true if it may be present.
    pub fn may_contain(&self, hash: u64) -> bool {
        match self {
            Bloom::Blocked { lines, probes } => {
                let Some(line) = lines.get(Self::line_of(hash, lines.len())) else {
                    return true;
                };
                // Every probe's word is read before one test: one cache line, no branch
                // per probe.
                let mut missing = 0u64;
                for bit in Self::line_bits(hash, *probes) {
                    let word = line.0.get(word_of(bit)).copied().unwrap_or(0);
                    missing |= !word & (1 << (bit % 64));
                }
                missing == 0
            }
            Bloom::Spread { bits, probes } => {
                let nbits = bits.len() * 8;
                if nbits == 0 {
                    return true;
                }
                Self::spread_positions(hash, *probes, nbits)
                    .all(|i| bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Bloom::Blocked { lines, probes } => {
                let mut out = Vec::with_capacity(lines.len() * 64 + 1);
                out.push(BLOCKED | *probes as u8);
                for word in lines.iter().flat_map(|l| l.0) {
                    out.extend_from_slice(&word.to_le_bytes());
                }
                out
            }
            Bloom::Spread { bits, probes } => {
                let mut out = Vec::with_capacity(bits.len() + 1);
                out.push(*probes as u8);
                out.extend_from_slice(bits);
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Bloom> {
        let (&first, bits) = bytes
            .split_first()
            .ok_or_else(|| Error::Corruption("empty bloom filter".into()))?;
        let probes = first & !BLOCKED;
        if probes == 0 || probes > 30 {
            return Err(Error::Corruption(format!(
                "bloom filter with {probes} probes"
            )));
        }
        let probes = u32::from(probes);
        if first & BLOCKED == 0 {
            return Ok(Bloom::Spread {
                bits: bits.to_vec(),
                probes,
            });
        }
        if bits.is_empty() || bits.len() % 64 != 0 {
            return Err(Error::Corruption(format!(
                "blocked bloom filter of {} bytes: not whole 64-byte lines",
                bits.len()
            )));
        }
        let lines = bits
            .chunks_exact(64)
            .map(|line| {
                let mut words = [0u64; 8];
                for (w, b) in words.iter_mut().zip(line.chunks_exact(8)) {
                    *w = u64::from_le_bytes(b.try_into().unwrap_or_default());
                }
                Line(words)
            })
            .collect();
        Ok(Bloom::Blocked { lines, probes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let keys: Vec<u64> = (0..10_000u32).map(|i| hash(&i.to_be_bytes())).collect();
        let bloom = Bloom::decode(&Bloom::build(&keys).encode()).unwrap();
        assert!(keys.iter().all(|h| bloom.may_contain(*h)));
        let false_positives = (10_000..110_000u32)
            .filter(|i| bloom.may_contain(hash(&i.to_be_bytes())))
            .count();
        assert!(
            false_positives < 1_500,
            "{false_positives} false positives in 100k"
        );
    }

    #[test]
    fn a_key_sets_bits_in_one_line_only() {
        let keys: Vec<u64> = (0..1_000u32).map(|i| hash(&i.to_be_bytes())).collect();
        let Bloom::Blocked { lines, .. } = Bloom::build(&keys) else {
            panic!("not blocked");
        };
        assert_eq!(lines.len(), 20);
        for &h in &keys[..20] {
            let one = Bloom::build(&[h]);
            let Bloom::Blocked { lines: mine, .. } = &one else {
                panic!("not blocked");
            };
            let set: Vec<usize> = (0..mine.len())
                .filter(|&i| mine[i] != Line::default())
                .collect();
            assert_eq!(set.len(), 1, "a key's bits span lines {set:?}");
            assert!(one.may_contain(h));
        }
        // The lines are used alike: none is empty or more than twice the mean.
        for line in &lines {
            let ones: u32 = line.0.iter().map(|w| w.count_ones()).sum();
            assert!((100..=400).contains(&ones), "{ones} of 512 bits set");
        }
    }

    #[test]
    fn filters_written_before_blocking_are_still_read() {
        let keys: Vec<u64> = (0..5_000u32).map(|i| hash(&i.to_be_bytes())).collect();
        let nbits = keys.len() * 10;
        let mut bits = vec![0u8; nbits.div_ceil(8)];
        for &h in &keys {
            for i in Bloom::spread_positions(h, 7, bits.len() * 8) {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        let mut old = vec![7u8];
        old.extend_from_slice(&bits);
        let bloom = Bloom::decode(&old).unwrap();
        assert!(matches!(bloom, Bloom::Spread { probes: 7, .. }));
        assert_eq!(bloom.encode(), old);
        assert!(keys.iter().all(|h| bloom.may_contain(*h)));
        let false_positives = (5_000..55_000u32)
            .filter(|i| bloom.may_contain(hash(&i.to_be_bytes())))
            .count();
        assert!(false_positives < 1_000, "{false_positives} in 50k");
    }

    #[test]
    fn corrupt_filters_are_rejected() {
        assert!(Bloom::decode(&[]).is_err());
        assert!(Bloom::decode(&[0, 1, 2]).is_err());
        assert!(Bloom::decode(&[BLOCKED]).is_err());
        assert!(Bloom::decode(&[BLOCKED | 6]).is_err());
        assert!(Bloom::decode(&[BLOCKED | 6, 1, 2, 3]).is_err());
        let mut whole = vec![BLOCKED | 6];
        whole.extend_from_slice(&[0xff; 64]);
        assert!(Bloom::decode(&whole).unwrap().may_contain(42));
        whole.push(0);
        assert!(Bloom::decode(&whole).is_err());
    }
}
