//! A bloom filter over a segment's keys, so point reads skip segments without the key.
//!
//! Bits are set by double hashing one 64-bit xxh3 hash (Kirsch–Mitzenmacher); with 10
//! bits per key and 7 probes the false-positive rate is about 1%.

use crate::error::{Error, Result};

const BITS_PER_KEY: usize = 10;
const PROBES: u32 = 7;

/// The hash a bloom filter uses for `key`.
pub fn hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// A built bloom filter.
#[derive(Clone, Debug, PartialEq)]
pub struct Bloom {
    bits: Vec<u8>,
    probes: u32,
}

impl Bloom {
    /// Builds a filter holding `hashes`.
    pub fn build(hashes: &[u64]) -> Bloom {
        let nbits = (hashes.len() * BITS_PER_KEY).max(64);
        let mut bits = vec![0u8; nbits.div_ceil(8)];
        let nbits = bits.len() * 8;
        for &h in hashes {
            for i in Self::positions(h, PROBES, nbits) {
                if let Some(byte) = bits.get_mut(i / 8) {
                    *byte |= 1 << (i % 8);
                }
            }
        }
        Bloom {
            bits,
            probes: PROBES,
        }
    }

    fn positions(h: u64, probes: u32, nbits: usize) -> impl Iterator<Item = usize> {
        let h1 = h;
        let h2 = h.rotate_left(32) | 1;
        (0..u64::from(probes))
            .map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % nbits as u64) as usize)
    }

    /// False if `hash` is certainly absent; true if it may be present.
    pub fn may_contain(&self, hash: u64) -> bool {
        let nbits = self.bits.len() * 8;
        if nbits == 0 {
            return true;
        }
        Self::positions(hash, self.probes, nbits).all(|i| {
            self.bits
                .get(i / 8)
                .is_some_and(|b| b & (1 << (i % 8)) != 0)
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bits.len() + 1);
        out.push(self.probes as u8);
        out.extend_from_slice(&self.bits);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Bloom> {
        let (&probes, bits) = bytes
            .split_first()
            .ok_or_else(|| Error::Corruption("empty bloom filter".into()))?;
        if probes == 0 || probes > 30 {
            return Err(Error::Corruption(format!(
                "bloom filter with {probes} probes"
            )));
        }
        Ok(Bloom {
            bits: bits.to_vec(),
            probes: u32::from(probes),
        })
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
            false_positives < 2_000,
            "{false_positives} false positives in 100k"
        );
    }

    #[test]
    fn corrupt_filters_are_rejected() {
        assert!(Bloom::decode(&[]).is_err());
        assert!(Bloom::decode(&[0, 1, 2]).is_err());
    }
}
