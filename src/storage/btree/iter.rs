//! Range iteration: a cursor from each end of a key range, so a range reads in ascending
//! order with `next` and in descending order with `next_back` (`.rev()`).

use std::ops::Bound;
use std::sync::Arc;

use super::page::Node;
use super::tree::BTree;
use crate::error::{Error, Result};

type Entry = (Vec<u8>, Vec<u8>);

/// A path from the root to a leaf: for each branch the child being read, for the leaf the
/// position (next entry going forward; entries left before it going backward).
struct Cursor {
    stack: Vec<(Arc<Node>, usize)>,
}

fn broken() -> Error {
    Error::Internal("B-tree cursor on a malformed path".into())
}

impl Cursor {
    /// Positions before the first entry within `start`.
    fn seek_front(tree: &BTree, start: &Bound<Vec<u8>>) -> Result<Cursor> {
        let mut stack = Vec::new();
        let mut id = tree.root();
        loop {
            let node = tree.node(id)?;
            match &*node {
                Node::Branch { keys, children } => {
                    let idx = match start {
                        Bound::Unbounded => 0,
                        Bound::Included(k) | Bound::Excluded(k) => {
                            keys.partition_point(|s| s.as_slice() <= k.as_slice())
                        }
                    };
                    id = *children.get(idx).ok_or_else(broken)?;
                    stack.push((node.clone(), idx));
                }
                Node::Leaf { entries } => {
                    let pos = match start {
                        Bound::Unbounded => 0,
                        Bound::Included(k) => entries.partition_point(|e| e < k.as_slice()),
                        Bound::Excluded(k) => entries.partition_point(|e| e <= k.as_slice()),
                    };
                    stack.push((node.clone(), pos));
                    return Ok(Cursor { stack });
                }
            }
        }
    }

    /// Positions after the last entry within `end`.
    fn seek_back(tree: &BTree, end: &Bound<Vec<u8>>) -> Result<Cursor> {
        let mut stack = Vec::new();
        let mut id = tree.root();
        loop {
            let node = tree.node(id)?;
            match &*node {
                Node::Branch { keys, children } => {
                    let idx = match end {
                        Bound::Unbounded => keys.len(),
                        Bound::Included(k) => {
                            keys.partition_point(|s| s.as_slice() <= k.as_slice())
                        }
                        Bound::Excluded(k) => keys.partition_point(|s| s.as_slice() < k.as_slice()),
                    };
                    id = *children.get(idx).ok_or_else(broken)?;
                    stack.push((node.clone(), idx));
                }
                Node::Leaf { entries } => {
                    let pos = match end {
                        Bound::Unbounded => entries.len(),
                        Bound::Included(k) => entries.partition_point(|e| e <= k.as_slice()),
                        Bound::Excluded(k) => entries.partition_point(|e| e < k.as_slice()),
                    };
                    stack.push((node.clone(), pos));
                    return Ok(Cursor { stack });
                }
            }
        }
    }

    /// Descends from page `id` to its first (`forward`) or last leaf.
    fn descend(&mut self, tree: &BTree, mut id: u64, forward: bool) -> Result<()> {
        loop {
            let node = tree.node(id)?;
            match &*node {
                Node::Branch { children, .. } => {
                    let idx = if forward {
                        0
                    } else {
                        children.len().saturating_sub(1)
                    };
                    id = *children.get(idx).ok_or_else(broken)?;
                    self.stack.push((node.clone(), idx));
                }
                Node::Leaf { entries } => {
                    let pos = if forward { 0 } else { entries.len() };
                    self.stack.push((node.clone(), pos));
                    return Ok(());
                }
            }
        }
    }

    /// The key this cursor returned last, if it returned one: after `next`, the entry
    /// before the leaf position; after `next_back`, the one at it.
    fn last(&self, forward: bool) -> Option<Vec<u8>> {
        let (node, pos) = self.stack.last()?;
        let Node::Leaf { entries } = &**node else {
            return None;
        };
        let at = if forward { pos.checked_sub(1)? } else { *pos };
        entries.key(at).map(<[u8]>::to_vec)
    }

    fn next(&mut self, tree: &BTree) -> Result<Option<Entry>> {
        loop {
            let Some((node, pos)) = self.stack.last_mut() else {
                return Ok(None);
            };
            if let Node::Leaf { entries } = &**node
                && let Some((k, v)) = entries.get(*pos)
            {
                *pos += 1;
                return Ok(Some((crate::storage::recycle::key_from(k), v.to_vec())));
            }
            if !self.next_leaf(tree)? {
                return Ok(None);
            }
        }
    }

    /// Moves from the leaf being read to the start of the next one; false past the last.
    fn next_leaf(&mut self, tree: &BTree) -> Result<bool> {
        self.stack.pop();
        loop {
            let Some((node, idx)) = self.stack.last_mut() else {
                return Ok(false);
            };
            let Node::Branch { children, .. } = &**node else {
                return Err(broken());
            };
            *idx += 1;
            if let Some(&c) = children.get(*idx) {
                self.descend(tree, c, true)?;
                return Ok(true);
            }
            self.stack.pop();
        }
    }

    fn next_back(&mut self, tree: &BTree) -> Result<Option<Entry>> {
        loop {
            let Some((node, pos)) = self.stack.last_mut() else {
                return Ok(None);
            };
            if let Node::Leaf { entries } = &**node
                && *pos > 0
                && let Some((k, v)) = entries.get(*pos - 1)
            {
                *pos -= 1;
                return Ok(Some((crate::storage::recycle::key_from(k), v.to_vec())));
            }
            self.stack.pop();
            loop {
                let Some((node, idx)) = self.stack.last_mut() else {
                    return Ok(None);
                };
                let Node::Branch { children, .. } = &**node else {
                    return Err(broken());
                };
                if *idx > 0 {
                    *idx -= 1;
                    let c = *children.get(*idx).ok_or_else(broken)?;
                    self.descend(tree, c, false)?;
                    break;
                }
                self.stack.pop();
            }
        }
    }
}

/// The entries of a [`BTree`] within a key range, as `Result<(key, value)>`; after an
/// error it ends.
pub struct Range<'a> {
    tree: &'a BTree,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    front: Option<Cursor>,
    back: Option<Cursor>,
    last_front: Option<Vec<u8>>,
    last_back: Option<Vec<u8>>,
    done: bool,
}

/// Counts the entries of `tree` within `start` and `end` without copying any: each leaf's
/// entries in range are counted by their positions (a leaf wholly within the range with one
/// comparison). At most `leaves` leaves are read: the count, and where it stopped at that
/// limit before the range's end, the last key counted (the rest of the range lies after it).
pub(super) fn count_range(
    tree: &BTree,
    start: &Bound<Vec<u8>>,
    end: &Bound<Vec<u8>>,
    leaves: usize,
) -> Result<(u64, Option<Vec<u8>>)> {
    let mut cursor = Cursor::seek_front(tree, start)?;
    let mut n = 0u64;
    let mut read = 0;
    loop {
        let Some((node, pos)) = cursor.stack.last() else {
            return Ok((n, None));
        };
        let Node::Leaf { entries } = &**node else {
            return Err(broken());
        };
        let rest = entries.len().saturating_sub(*pos);
        let before_end = |k: &[u8]| match end {
            Bound::Unbounded => true,
            Bound::Included(e) => k <= e.as_slice(),
            Bound::Excluded(e) => k < e.as_slice(),
        };
        // Keys before the position are smaller, so within the end too.
        let last = entries.last_key().filter(|_| rest > 0);
        let within = match last {
            Some(last) if !before_end(last) => {
                entries.partition_point(before_end).saturating_sub(*pos)
            }
            _ => rest,
        };
        n += within as u64;
        if within < rest {
            return Ok((n, None));
        }
        read += 1;
        if read >= leaves
            && let Some(last) = last
        {
            return Ok((n, Some(last.to_vec())));
        }
        if !cursor.next_leaf(tree)? {
            return Ok((n, None));
        }
    }
}

impl<'a> Range<'a> {
    pub(super) fn new(tree: &'a BTree, start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Self {
        Range {
            tree,
            start,
            end,
            front: None,
            back: None,
            last_front: None,
            last_back: None,
            done: false,
        }
    }

    fn step(&mut self, forward: bool) -> Result<Option<Entry>> {
        let tree = self.tree;
        // The other end's last entry bounds this one; it is kept only once both ends are
        // in use (most ranges read from one end).
        if forward && self.front.is_none() {
            self.last_back = self.back.as_ref().and_then(|c| c.last(false));
        } else if !forward && self.back.is_none() {
            self.last_front = self.front.as_ref().and_then(|c| c.last(true));
        }
        let cursor = if forward {
            &mut self.front
        } else {
            &mut self.back
        };
        let cursor = match cursor {
            Some(c) => c,
            None => cursor.insert(if forward {
                Cursor::seek_front(tree, &self.start)?
            } else {
                Cursor::seek_back(tree, &self.end)?
            }),
        };
        let item = if forward {
            cursor.next(tree)?
        } else {
            cursor.next_back(tree)?
        };
        let Some((key, value)) = item else {
            return Ok(None);
        };
        let k = key.as_slice();
        let within = if forward {
            let before_end = match &self.end {
                Bound::Unbounded => true,
                Bound::Included(e) => k <= e.as_slice(),
                Bound::Excluded(e) => k < e.as_slice(),
            };
            before_end && self.last_back.as_deref().is_none_or(|b| k < b)
        } else {
            let after_start = match &self.start {
                Bound::Unbounded => true,
                Bound::Included(s) => k >= s.as_slice(),
                Bound::Excluded(s) => k > s.as_slice(),
            };
            after_start && self.last_front.as_deref().is_none_or(|f| k > f)
        };
        if !within {
            return Ok(None);
        }
        if forward {
            if self.back.is_some() {
                self.last_front = Some(key.clone());
            }
        } else if self.front.is_some() {
            self.last_back = Some(key.clone());
        }
        Ok(Some((key, value)))
    }

    fn advance(&mut self, forward: bool) -> Option<Result<Entry>> {
        if self.done {
            return None;
        }
        match self.step(forward) {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for Range<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        self.advance(true)
    }
}

impl DoubleEndedIterator for Range<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.advance(false)
    }
}
