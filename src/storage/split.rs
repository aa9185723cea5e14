//! Where to cut a key range into parts holding about as many documents each, so that a
//! parallel scan can hand each part to its own thread.
//!
//! The cut points are guesses from what is cheap to know: the first key and entry count
//! of each segment block in the range, and for a memtable its smallest and largest key in
//! the range and its size, with its keys taken as spread evenly between the two. A bad
//! guess makes the parts uneven, never wrong: the parts always cover the range exactly.

/// Keys sampled per memtable at most (its share is spread over this many points).
const MEMTABLE_SAMPLES: u64 = 256;

/// Weighted sample keys of a range: each key stands for about `weight` documents at or
/// after it.
#[derive(Debug, Default)]
pub struct Samples {
    keys: Vec<(Vec<u8>, u64)>,
}

impl Samples {
    /// A segment block starting at `key` with `entries` entries.
    pub fn block(&mut self, key: &[u8], entries: u64) {
        self.keys.push((key.to_vec(), entries.max(1)));
    }

    /// A memtable whose keys in the range run from `first` to `last`, holding about
    /// `entries` entries, taken as spread evenly between them.
    pub fn spread(&mut self, first: &[u8], last: &[u8], entries: u64) {
        let n = (entries / 64).clamp(1, MEMTABLE_SAMPLES);
        let weight = (entries / n).max(1);
        for i in 0..n {
            self.keys.push((interpolate(first, last, i, n), weight));
        }
    }

    /// Up to `parts - 1` keys strictly inside `(start, end)`, increasing, cutting the
    /// sampled documents into `parts` runs of about equal weight.
    pub fn cut(mut self, start: &[u8], end: &[u8], parts: usize) -> Vec<Vec<u8>> {
        self.keys.sort_unstable();
        let total: u64 = self.keys.iter().map(|(_, w)| w).sum();
        if parts < 2 || total == 0 {
            return Vec::new();
        }
        let mut cuts: Vec<Vec<u8>> = Vec::with_capacity(parts - 1);
        let mut seen = 0u64;
        let mut next = 1usize;
        for (key, weight) in self.keys {
            if next >= parts {
                break;
            }
            // Cut before the sample that carries the running total past the next share.
            if seen >= total * next as u64 / parts as u64
                && key.as_slice() > start
                && key.as_slice() < end
                && cuts.last().is_none_or(|c| *c < key)
            {
                cuts.push(key);
                next += 1;
            }
            seen += weight;
        }
        cuts
    }
}

/// A key about `num / den` of the way from `a` to `b` (a <= b): the bytes after their
/// common prefix are read as a number, eight of them at most.
pub fn interpolate(a: &[u8], b: &[u8], num: u64, den: u64) -> Vec<u8> {
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let word = |k: &[u8]| -> u64 {
        let mut w = [0u8; 8];
        for (slot, byte) in w.iter_mut().zip(k.iter().skip(common)) {
            *slot = *byte;
        }
        u64::from_be_bytes(w)
    };
    let (lo, hi) = (u128::from(word(a)), u128::from(word(b)));
    let at = lo + (hi.saturating_sub(lo)) * u128::from(num) / u128::from(den.max(1));
    let mut key = a.get(..common).unwrap_or_default().to_vec();
    key.extend_from_slice(&(at as u64).to_be_bytes());
    key.truncate(a.len().max(b.len()));
    if key.as_slice() < a {
        a.to_vec()
    } else if key.as_slice() > b {
        b.to_vec()
    } else {
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_stays_between_its_ends() {
        let (a, b) = (b"item:0001".as_slice(), b"item:9999".as_slice());
        let mut last = a.to_vec();
        for i in 0..=10 {
            let k = interpolate(a, b, i, 10);
            assert!(k.as_slice() >= a && k.as_slice() <= b, "{k:?}");
            assert!(k >= last, "not increasing at {i}");
            last = k;
        }
        assert_eq!(interpolate(a, a, 1, 2), a.to_vec());
    }

    #[test]
    fn cuts_split_the_weight_evenly_inside_the_range() {
        let mut s = Samples::default();
        for i in 0..100u32 {
            s.block(format!("k{i:03}").as_bytes(), 10);
        }
        let cuts = s.cut(b"k", b"l", 4);
        assert_eq!(
            cuts,
            vec![b"k025".to_vec(), b"k050".to_vec(), b"k075".to_vec()]
        );
        // Nothing to cut, or no room inside the range: no cuts.
        assert!(Samples::default().cut(b"a", b"z", 2).is_empty());
        let mut one = Samples::default();
        one.block(b"m", 5);
        assert!(one.cut(b"m", b"n", 2).is_empty());
    }

    #[test]
    fn a_memtable_spread_is_cut_near_its_middle() {
        let mut s = Samples::default();
        s.spread(b"c\x00\x00", b"c\xff\xff", 10_000);
        let cuts = s.cut(b"c", b"d", 2);
        assert_eq!(cuts.len(), 1);
        let mid = cuts[0][1];
        assert!((0x70..=0x90).contains(&mid), "{cuts:?}");
    }
}
