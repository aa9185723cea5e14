//! The size-tiered compaction policy, as a pure function.

/// Knobs of the policy (from the configuration).
#[derive(Clone, Copy, Debug)]
pub struct PolicyOptions {
    /// Segments of one tier that make a merge.
    pub min_merge: usize,
    /// Most segments merged at once.
    pub max_merge: usize,
    /// Segments of a tier differ in size by at most this factor.
    pub size_ratio: u64,
    /// Above this many segments, merge regardless of sizes.
    pub max_segments: usize,
}

/// A chosen merge: the run of segments at positions `start..start + len` of the
/// newest-first list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub start: usize,
    pub len: usize,
}

/// Chooses which adjacent run of segments to merge, if any. `sizes` are the segments'
/// sizes in bytes, newest first. Only adjacent runs are merged, so that the output can
/// take their place in the newest-first order.
pub fn choose(sizes: &[u64], opts: &PolicyOptions) -> Option<Choice> {
    let n = sizes.len();
    if n < 2 || n < opts.min_merge {
        return None;
    }
    let max_merge = opts.max_merge.max(opts.min_merge);
    // 1. The cheapest run of similar sizes that is long enough.
    let mut best: Option<(Choice, u64)> = None;
    for start in 0..n {
        let (mut lo, mut hi, mut total) = (u64::MAX, 0u64, 0u64);
        for len in 1..=max_merge.min(n - start) {
            let s = sizes.get(start + len - 1).copied().unwrap_or(0).max(1);
            lo = lo.min(s);
            hi = hi.max(s);
            total += s;
            if hi > lo.saturating_mul(opts.size_ratio.max(1)) {
                break;
            }
            if len >= opts.min_merge {
                let better = match best {
                    None => true,
                    // Prefer merging more segments, then fewer bytes.
                    Some((b, t)) => len > b.len || (len == b.len && total < t),
                };
                if better {
                    best = Some((Choice { start, len }, total));
                }
            }
        }
    }
    if let Some((choice, _)) = best {
        return Some(choice);
    }
    // 2. Too many segments: the adjacent run of min_merge with the fewest bytes.
    if n > opts.max_segments {
        let len = opts.min_merge.max(2).min(n);
        return (0..=n - len)
            .min_by_key(|&start| sizes.iter().skip(start).take(len).sum::<u64>())
            .map(|start| Choice { start, len });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: PolicyOptions = PolicyOptions {
        min_merge: 4,
        max_merge: 10,
        size_ratio: 4,
        max_segments: 12,
    };

    #[test]
    fn nothing_to_do_with_few_segments() {
        assert_eq!(choose(&[], &OPTS), None);
        assert_eq!(choose(&[10, 10, 10], &OPTS), None);
    }

    #[test]
    fn merges_a_tier_of_similar_sizes() {
        // Four small new segments in front of one big old one.
        let c = choose(&[10, 12, 9, 11, 1000], &OPTS).unwrap();
        assert_eq!(c, Choice { start: 0, len: 4 });
    }

    #[test]
    fn does_not_merge_dissimilar_sizes() {
        assert_eq!(choose(&[1, 100, 10_000, 1_000_000], &OPTS), None);
    }

    #[test]
    fn prefers_the_longer_run() {
        let c = choose(&[5, 5, 5, 5, 5, 5, 900, 900, 900, 900], &OPTS).unwrap();
        assert_eq!(c, Choice { start: 0, len: 6 });
    }

    #[test]
    fn caps_the_segment_count() {
        // Sizes grow by 10x each: no tier, but 13 segments is over the cap.
        let sizes: Vec<u64> = (0..13).map(|i| 10u64.pow(i)).collect();
        let c = choose(&sizes, &OPTS).unwrap();
        assert_eq!(c, Choice { start: 0, len: 4 });
    }

    #[test]
    fn steady_flushes_keep_the_count_bounded() {
        // Simulate a steady write load: each round adds one flushed segment in front and
        // applies the policy until it is satisfied.
        let mut sizes: Vec<u64> = Vec::new();
        for _ in 0..2_000 {
            sizes.insert(0, 100);
            while let Some(c) = choose(&sizes, &OPTS) {
                let merged: u64 = sizes[c.start..c.start + c.len].iter().sum();
                sizes.splice(c.start..c.start + c.len, [merged]);
            }
            assert!(sizes.len() <= OPTS.max_segments);
        }
        assert_eq!(sizes.iter().sum::<u64>(), 200_000);
    }
}
