//! The tree: search, insert with splits, delete with merges, commit, rollback and the
//! whole-structure [`BTree::check`].
//!
//! Every change is copy-on-write. A change to a page that belongs to the committed tree
//! writes the new version to another page (a *fresh* page, from the free list or the end
//! of the file) and puts the old page on the *pending* list; a page already fresh since
//! the last commit is changed in place. Fresh pages live in memory (`dirty`) until
//! [`BTree::commit`]:
//!
//! 1. write every dirty page to its fresh page number;
//! 2. write the new free list (free pages, plus pending ones and the old free-list
//!    pages, which the new state no longer uses) to pages that were free before;
//! 3. fsync the file;
//! 4. write the next superblock (generation + 1) to the other slot and fsync again.
//!
//! Until step 4 the old superblock names an untouched tree; after it the new one does.
//! Pending pages become reusable only after step 4, so no page of a durable tree is ever
//! overwritten. Uncommitted changes are held in memory and vanish on drop (a crash) or
//! [`BTree::rollback`].
//!
//! A full leaf splits into two halves, except where it is being appended to: when the
//! entry that overflows it lands right after an entry inserted recently
//! ([`RecentInserts`]), it is cut after the new entry and keeps nine tenths of a page
//! at most, as InnoDB splits at the insert point of sequential inserts and PostgreSQL
//! leaves its rightmost leaf 90% full. Ascending keys (an index build's sorted batches,
//! a column that grows) then fill their leaves instead of leaving each half empty, and
//! so do several such runs at once (an index on a column of a few values, each
//! appended to at the end of its range).

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use super::file::{FIRST_DATA_PAGE, PageCache, Pager, Superblock};
use super::iter::Range;
use super::page::{self, Entries, Key, MAX_KEY_LEN, MAX_VALUE_LEN, Node, PAGE_SIZE};
use crate::error::{Error, Result};
use crate::storage::fs::sync_dir;

/// The hasher of the page maps a tree consults on every insert and delete: page numbers
/// are ours, not a client's, and SipHash cost more than the rest of an insert's lookups.
type PageHasher = foldhash::fast::RandomState;

/// Decoded pages cached by default.
pub const DEFAULT_CACHE_BYTES: usize = 4 << 20;

/// One change in a batch for [`BTree::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    Insert { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

/// What [`BTree::check`] found in a consistent tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Generation of the committed superblock.
    pub generation: u64,
    /// Levels: 1 for a tree that is a single leaf.
    pub height: usize,
    pub entries: u64,
    pub leaves: u64,
    pub branches: u64,
    /// Pages reachable from the root.
    pub live_pages: u64,
    /// Pages free now or after the next commit.
    pub free_pages: u64,
    /// Pages holding the committed free list.
    pub free_list_pages: u64,
    /// Pages in the file, the two superblock slots included.
    pub page_count: u64,
}

/// A persistent B+tree of byte keys and byte values in one file.
pub struct BTree {
    pager: Pager,
    committed: Superblock,
    committed_free: Vec<u64>,
    free_list_pages: Vec<u64>,
    root: u64,
    len: u64,
    page_count: u64,
    /// Pages reusable now.
    free: Vec<u64>,
    /// Pages of the committed tree that the working tree dropped; free after commit.
    pending: Vec<u64>,
    /// Pages allocated since the last commit.
    fresh: HashSet<u64, PageHasher>,
    /// Contents of fresh pages.
    dirty: HashMap<u64, Arc<Node>, PageHasher>,
    /// Set when an operation failed midway: writes are refused until `rollback`.
    broken: Option<String>,
    /// Set when a commit failed: the file must be reopened.
    poisoned: Option<String>,
    /// The owner's numbers in the working state (see [`BTree::set_meta`]).
    meta: [u64; 2],
    /// The keys inserted last, to recognise a leaf being appended to.
    recent: RecentInserts,
}

/// A separator key and the page of the new right sibling, after a split.
type Split = Option<(Key, u64)>;

/// How many of the latest inserted keys a tree remembers ([`RecentInserts`]): more than
/// the runs of appends an index sees at once (an index on a column of a few dozen
/// values, appended to at the end of each value's range: with 50 values written in
/// random order, a value's last insert is among the last 128 about 92 times in 100).
/// Only a split reads them.
const RECENT_INSERTS: usize = 128;

/// The most a leaf cut after a run of appends keeps (header included): 90% of a page.
const APPEND_FILL: usize = PAGE_SIZE * 9 / 10;

/// The keys a tree had inserted last, as a ring of reused buffers. Consulted only when
/// a leaf overflows: if the entry before the new one is one of these, the leaf is being
/// appended to.
#[derive(Default)]
struct RecentInserts {
    keys: Vec<Vec<u8>>,
    next: usize,
}

impl RecentInserts {
    fn record(&mut self, key: &[u8]) {
        match self.keys.get_mut(self.next) {
            Some(slot) => {
                slot.clear();
                slot.extend_from_slice(key);
            }
            None => self.keys.push(key.to_vec()),
        }
        self.next = (self.next + 1) % RECENT_INSERTS;
    }

    fn contains(&self, key: &[u8]) -> bool {
        self.keys.iter().any(|k| k.as_slice() == key)
    }
}

enum Ins {
    /// The key already had this value; nothing changed.
    Same,
    Done {
        id: u64,
        split: Split,
        old: Option<Vec<u8>>,
    },
}

struct Del {
    id: u64,
    size: usize,
    empty: bool,
}

fn internal(what: &str) -> Error {
    Error::Internal(format!("B-tree: {what}"))
}

impl BTree {
    /// Creates a new, empty tree file at `path` (which must not exist).
    pub fn create(path: &Path) -> Result<BTree> {
        Self::create_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// [`BTree::create`] with a page cache of `cache_bytes`.
    pub fn create_with_cache(path: &Path, cache_bytes: usize) -> Result<BTree> {
        Self::create_in(path, PageCache::new(cache_bytes))
    }

    /// [`BTree::create`] reading pages through `cache` (a view of a shared cache).
    pub fn create_in(path: &Path, cache: PageCache) -> Result<BTree> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let pager = Pager::new(file, path, cache);
        let sb = Superblock {
            generation: 1,
            root: FIRST_DATA_PAGE,
            len: 0,
            page_count: FIRST_DATA_PAGE + 1,
            free_head: 0,
            meta: [0, 0],
        };
        pager.write_raw(0, &vec![0u8; PAGE_SIZE])?;
        pager.write_raw(
            FIRST_DATA_PAGE,
            &page::encode_node(FIRST_DATA_PAGE, &Node::empty_leaf())?,
        )?;
        pager.sync()?;
        pager.write_superblock(&sb)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            sync_dir(dir)?;
        }
        Ok(Self::from_parts(pager, sb, Vec::new(), Vec::new()))
    }

    /// Opens an existing tree file at its last committed state.
    pub fn open(path: &Path) -> Result<BTree> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// [`BTree::open`] with a page cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<BTree> {
        Self::open_in(path, PageCache::new(cache_bytes))
    }

    /// [`BTree::open`] reading pages through `cache` (a view of a shared cache).
    pub fn open_in(path: &Path, cache: PageCache) -> Result<BTree> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let pager = Pager::new(file, path, cache);
        let sb = pager.read_superblock()?;
        let (free, list_pages) = pager.read_free_list(sb.free_head, sb.page_count)?;
        let mut seen: HashSet<u64> = HashSet::with_capacity(free.len() + list_pages.len());
        for p in free.iter().chain(&list_pages).chain([&sb.root]) {
            if !seen.insert(*p) {
                return Err(Error::Corruption(format!(
                    "{}: page {p} is listed twice among free, free-list and root pages",
                    path.display()
                )));
            }
        }
        let tree = Self::from_parts(pager, sb, free, list_pages);
        tree.node(tree.root)?;
        Ok(tree)
    }

    fn from_parts(pager: Pager, sb: Superblock, free: Vec<u64>, list_pages: Vec<u64>) -> BTree {
        BTree {
            pager,
            committed: sb,
            committed_free: free.clone(),
            free_list_pages: list_pages,
            root: sb.root,
            len: sb.len,
            page_count: sb.page_count,
            free,
            pending: Vec::new(),
            fresh: HashSet::default(),
            dirty: HashMap::default(),
            broken: None,
            poisoned: None,
            meta: sb.meta,
            recent: RecentInserts::default(),
        }
    }

    /// The owner's two numbers, as last set (committed or not).
    pub fn meta(&self) -> [u64; 2] {
        self.meta
    }

    /// Sets the owner's two numbers; they become durable with the next commit.
    pub fn set_meta(&mut self, meta: [u64; 2]) {
        self.meta = meta;
    }

    /// Entries in the working tree (committed or not).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Generation of the last commit; increases by one per commit that changed something.
    pub fn generation(&self) -> u64 {
        self.committed.generation
    }

    /// True if there are changes since the last commit.
    pub fn has_changes(&self) -> bool {
        !self.fresh.is_empty() || !self.pending.is_empty() || self.root != self.committed.root
    }

    /// Bytes held by the page cache.
    pub fn cache_bytes(&self) -> usize {
        self.pager.cache.bytes()
    }

    /// Pages the page cache holds, of every file sharing it.
    pub fn cached_pages(&self) -> usize {
        self.pager.cache.pages()
    }

    pub(super) fn node(&self, id: u64) -> Result<Arc<Node>> {
        match self.dirty.get(&id) {
            Some(n) => Ok(n.clone()),
            None => self.pager.read_node(id),
        }
    }

    pub(super) fn root(&self) -> u64 {
        self.root
    }

    /// The node of page `id`, owned for changing (taken out of `dirty` if it is there).
    fn take_node(&mut self, id: u64) -> Result<Node> {
        match self.dirty.remove(&id) {
            Some(n) => Ok(Arc::try_unwrap(n).unwrap_or_else(|n| (*n).clone())),
            None => Ok((*self.pager.read_node(id)?).clone()),
        }
    }

    fn alloc(&mut self) -> u64 {
        let id = match self.free.pop() {
            Some(p) => {
                self.pager.cache.remove(p);
                p
            }
            None => {
                self.page_count += 1;
                self.page_count - 1
            }
        };
        self.fresh.insert(id);
        id
    }

    /// Drops page `id` from the working tree.
    fn discard(&mut self, id: u64) {
        if self.fresh.remove(&id) {
            self.dirty.remove(&id);
            self.free.push(id);
        } else {
            self.pending.push(id);
        }
    }

    /// Stores a new version of page `id`: in place if fresh, else copy-on-write.
    fn put(&mut self, id: u64, node: Node) -> u64 {
        let id = if self.fresh.contains(&id) {
            id
        } else {
            self.discard(id);
            self.alloc()
        };
        self.dirty.insert(id, Arc::new(node));
        id
    }

    fn writable(&self) -> Result<()> {
        if let Some(why) = &self.poisoned {
            return Err(Error::ReadOnly(format!(
                "B-tree {}: a commit failed ({why}); reopen the file",
                self.pager.path().display()
            )));
        }
        if let Some(why) = &self.broken {
            return Err(Error::ReadOnly(format!(
                "B-tree {}: an update failed ({why}); roll back first",
                self.pager.path().display()
            )));
        }
        Ok(())
    }

    fn check_sizes(key: &[u8], value: &[u8]) -> Result<()> {
        if key.len() > MAX_KEY_LEN {
            return Err(Error::limit(format!(
                "index key of {} bytes is over the limit of {MAX_KEY_LEN} bytes",
                key.len()
            )));
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(Error::limit(format!(
                "index value of {} bytes is over the limit of {MAX_VALUE_LEN} bytes",
                value.len()
            )));
        }
        Ok(())
    }

    fn mark_broken<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.broken = Some(e.to_string());
        }
        r
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut id = self.root;
        loop {
            let node = self.node(id)?;
            match &*node {
                Node::Leaf { entries } => {
                    return Ok(entries
                        .search(key)
                        .ok()
                        .and_then(|i| entries.value(i))
                        .map(<[u8]>::to_vec));
                }
                Node::Branch { keys, children } => {
                    let idx = keys.partition_point(|k| k.as_slice() <= key);
                    id = *children.get(idx).ok_or_else(|| internal("branch child"))?;
                }
            }
        }
    }

    /// Stores `value` under `key` (uncommitted), returning the value it replaced.
    /// Keys over [`MAX_KEY_LEN`] and values over [`MAX_VALUE_LEN`] bytes are
    /// `Error::LimitExceeded`.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        self.writable()?;
        Self::check_sizes(key, value)?;
        let r = self.insert_root(key, value);
        self.mark_broken(r)
    }

    fn insert_root(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.insert_at(self.root, key, value)? {
            Ins::Same => Ok(Some(value.to_vec())),
            Ins::Done { id, split, old } => {
                self.root = id;
                if let Some((sep, right)) = split {
                    let new_root = self.alloc();
                    let node = Node::Branch {
                        keys: vec![sep],
                        children: vec![id, right],
                    };
                    self.dirty.insert(new_root, Arc::new(node));
                    self.root = new_root;
                }
                if old.is_none() {
                    self.len += 1;
                }
                Ok(old)
            }
        }
    }

    fn insert_at(&mut self, id: u64, key: &[u8], value: &[u8]) -> Result<Ins> {
        let node = self.node(id)?;
        match &*node {
            Node::Leaf { entries } => {
                let pos = entries.search(key);
                if let Ok(i) = pos
                    && entries.value(i) == Some(value)
                {
                    return Ok(Ins::Same);
                }
                drop(node);
                let mut n = self.take_node(id)?;
                let Node::Leaf { entries } = &mut n else {
                    return Err(internal("leaf changed kind"));
                };
                let old = match pos {
                    Ok(i) => entries.replace_value(i, value),
                    Err(i) => {
                        entries.insert(i, key, value);
                        None
                    }
                };
                // Overflowing with the new entry right after one inserted recently: a
                // run of appends, cut after the new entry.
                let appended = match (pos, &n) {
                    (Err(i), Node::Leaf { entries }) if i > 0 && !n.fits() => entries
                        .key(i - 1)
                        .is_some_and(|k| self.recent.contains(k))
                        .then_some(i),
                    _ => None,
                };
                if pos.is_err() {
                    self.recent.record(key);
                }
                let (id, split) = match appended {
                    Some(at) => self.store_appended(id, n, at)?,
                    None => self.store(id, n)?,
                };
                Ok(Ins::Done { id, split, old })
            }
            Node::Branch { keys, children } => {
                let idx = keys.partition_point(|k| k.as_slice() <= key);
                let child = *children.get(idx).ok_or_else(|| internal("branch child"))?;
                drop(node);
                let (cid, split, old) = match self.insert_at(child, key, value)? {
                    Ins::Same => return Ok(Ins::Same),
                    Ins::Done { id, split, old } => (id, split, old),
                };
                if cid == child && split.is_none() {
                    return Ok(Ins::Done {
                        id,
                        split: None,
                        old,
                    });
                }
                let mut n = self.take_node(id)?;
                let Node::Branch { keys, children } = &mut n else {
                    return Err(internal("branch changed kind"));
                };
                if let Some(c) = children.get_mut(idx) {
                    *c = cid;
                }
                if let Some((sep, right)) = split {
                    keys.insert(idx, sep);
                    children.insert(idx + 1, right);
                }
                let (id, split) = self.store(id, n)?;
                Ok(Ins::Done { id, split, old })
            }
        }
    }

    /// Stores a changed node, splitting it in two if it does not fit a page.
    fn store(&mut self, id: u64, node: Node) -> Result<(u64, Split)> {
        if node.fits() {
            return Ok((self.put(id, node), None));
        }
        let (left, sep, right) = split(node)?;
        Ok(self.store_halves(id, left, sep, right))
    }

    /// Stores the two nodes a split made: the left one in `id`'s place, the right one
    /// on a fresh page.
    fn store_halves(&mut self, id: u64, left: Node, sep: Key, right: Node) -> (u64, Split) {
        let left_id = self.put(id, left);
        let right_id = self.alloc();
        self.dirty.insert(right_id, Arc::new(right));
        (left_id, Some((sep, right_id)))
    }

    /// Stores a leaf that overflowed with entry `at` appended to a run of inserts: cut
    /// after it (or, past [`APPEND_FILL`], before the run's last entries), so that the
    /// entries after the run move to the right sibling with the run's end, where the
    /// run's next entries go; the leaf keeps the rest, nine tenths full. Halved as usual
    /// where such a cut leaves a side that does not fit.
    fn store_appended(&mut self, id: u64, node: Node, at: usize) -> Result<(u64, Split)> {
        let Node::Leaf { entries } = node else {
            return Err(internal("an appended split of a branch"));
        };
        let sizes: Vec<usize> = entries
            .iter()
            .map(|(k, v)| page::leaf_entry_size(k, v))
            .collect();
        // The leaf keeps at most APPEND_FILL of a page: room for a few inserts among
        // its entries before it splits again (PostgreSQL's leaf fillfactor).
        let mut cut = (at + 1).min(sizes.len().saturating_sub(1));
        let mut left: usize = sizes.iter().take(cut).sum();
        while cut > 1 && page::HEADER + left > APPEND_FILL {
            cut -= 1;
            left -= sizes.get(cut).copied().unwrap_or(0);
        }
        let right: usize = sizes.iter().skip(cut).sum();
        if cut == 0 || page::HEADER + left > PAGE_SIZE || page::HEADER + right > PAGE_SIZE {
            return self.store(id, Node::Leaf { entries });
        }
        let (left, sep, right) = cut_leaf(entries, cut)?;
        Ok(self.store_halves(id, left, sep, right))
    }

    /// Removes `key` (uncommitted); true if it was there.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool> {
        self.writable()?;
        if key.len() > MAX_KEY_LEN {
            return Ok(false);
        }
        let r = self.delete_root(key);
        self.mark_broken(r)
    }

    fn delete_root(&mut self, key: &[u8]) -> Result<bool> {
        let Some(d) = self.delete_at(self.root, key)? else {
            return Ok(false);
        };
        self.root = d.id;
        self.len = self.len.saturating_sub(1);
        loop {
            let node = self.node(self.root)?;
            match &*node {
                Node::Branch { children, .. } if children.len() <= 1 => {
                    let old = self.root;
                    self.root = match children.first() {
                        Some(&only) => only,
                        None => {
                            let id = self.alloc();
                            self.dirty.insert(id, Arc::new(Node::empty_leaf()));
                            id
                        }
                    };
                    drop(node);
                    self.discard(old);
                }
                _ => return Ok(true),
            }
        }
    }

    fn delete_at(&mut self, id: u64, key: &[u8]) -> Result<Option<Del>> {
        let node = self.node(id)?;
        match &*node {
            Node::Leaf { entries } => {
                let Ok(i) = entries.search(key) else {
                    return Ok(None);
                };
                drop(node);
                let mut n = self.take_node(id)?;
                if let Node::Leaf { entries } = &mut n {
                    entries.remove(i);
                }
                let (size, empty) = (n.encoded_size(), n.is_empty());
                Ok(Some(Del {
                    id: self.put(id, n),
                    size,
                    empty,
                }))
            }
            Node::Branch { keys, children } => {
                let idx = keys.partition_point(|k| k.as_slice() <= key);
                let child = *children.get(idx).ok_or_else(|| internal("branch child"))?;
                drop(node);
                let Some(d) = self.delete_at(child, key)? else {
                    return Ok(None);
                };
                let mut n = self.take_node(id)?;
                let merged = match &mut n {
                    Node::Branch { keys, children } => {
                        if let Some(c) = children.get_mut(idx) {
                            *c = d.id;
                        }
                        if d.empty {
                            self.discard(d.id);
                            if idx < children.len() {
                                children.remove(idx);
                            }
                            if idx > 0 && idx - 1 < keys.len() {
                                keys.remove(idx - 1);
                            } else if !keys.is_empty() {
                                keys.remove(0);
                            }
                            Ok(())
                        } else if d.size < PAGE_SIZE / 4 && children.len() > 1 {
                            self.try_merge(keys, children, idx)
                        } else {
                            Ok(())
                        }
                    }
                    Node::Leaf { .. } => Err(internal("branch changed kind")),
                };
                let (size, empty) = (n.encoded_size(), n.is_empty());
                let id = self.put(id, n);
                merged?;
                Ok(Some(Del { id, size, empty }))
            }
        }
    }

    /// Merges child `idx` with a neighbour if both fit one page.
    fn try_merge(
        &mut self,
        keys: &mut Vec<Key>,
        children: &mut Vec<u64>,
        idx: usize,
    ) -> Result<()> {
        let l = if idx + 1 < children.len() {
            idx
        } else {
            idx.saturating_sub(1)
        };
        let (Some(&lid), Some(&rid), Some(sep)) =
            (children.get(l), children.get(l + 1), keys.get(l))
        else {
            return Ok(());
        };
        let (left, right) = (self.node(lid)?, self.node(rid)?);
        let merged = match (&*left, &*right) {
            (Node::Leaf { entries: a }, Node::Leaf { entries: b }) => {
                let mut entries = a.clone();
                entries.append(b);
                Node::Leaf { entries }
            }
            (
                Node::Branch {
                    keys: ka,
                    children: ca,
                },
                Node::Branch {
                    keys: kb,
                    children: cb,
                },
            ) => Node::Branch {
                keys: ka.iter().chain([sep]).chain(kb).cloned().collect(),
                children: ca.iter().chain(cb).copied().collect(),
            },
            _ => {
                return Err(Error::Corruption(format!(
                    "{}: sibling pages {lid} and {rid} are on different levels",
                    self.pager.path().display()
                )));
            }
        };
        if !merged.fits() {
            return Ok(());
        }
        drop((left, right));
        self.discard(rid);
        let new_left = self.put(lid, merged);
        if let Some(c) = children.get_mut(l) {
            *c = new_left;
        }
        keys.remove(l);
        children.remove(l + 1);
        Ok(())
    }

    /// Applies a batch of changes (uncommitted). Sizes are checked for the whole batch
    /// first, so a batch with an over-long key changes nothing.
    pub fn apply(&mut self, batch: &[BatchOp]) -> Result<()> {
        self.writable()?;
        for op in batch {
            if let BatchOp::Insert { key, value } = op {
                Self::check_sizes(key, value)?;
            }
        }
        for op in batch {
            match op {
                BatchOp::Insert { key, value } => {
                    self.insert(key, value)?;
                }
                BatchOp::Delete { key } => {
                    self.delete(key)?;
                }
            }
        }
        Ok(())
    }

    /// Applies a batch and commits it.
    pub fn write_batch(&mut self, batch: &[BatchOp]) -> Result<()> {
        self.apply(batch)?;
        self.commit()
    }

    /// Entries with keys within the bounds, in key order; also a `DoubleEndedIterator`
    /// for descending order.
    pub fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Range<'_> {
        Range::new(self, start.map(<[u8]>::to_vec), end.map(<[u8]>::to_vec))
    }

    /// How many entries lie within `start` and `end`, reading at most `leaves` leaf pages:
    /// the count, and where the limit stopped it before the end, the last key counted
    /// (count again from just after it for the rest). No entry is copied.
    pub fn count_range(
        &self,
        start: &Bound<Vec<u8>>,
        end: &Bound<Vec<u8>>,
        leaves: usize,
    ) -> Result<(u64, Option<Vec<u8>>)> {
        super::iter::count_range(self, start, end, leaves.max(1))
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> Range<'_> {
        self.range(Bound::Unbounded, Bound::Unbounded)
    }

    /// Discards every change since the last commit.
    pub fn rollback(&mut self) {
        self.root = self.committed.root;
        self.len = self.committed.len;
        self.meta = self.committed.meta;
        self.page_count = self.committed.page_count;
        self.free = self.committed_free.clone();
        self.pending.clear();
        self.fresh.clear();
        self.dirty.clear();
        self.broken = None;
    }

    /// Makes every change since the last commit durable (see the module doc). A failed
    /// commit refuses every later write: reopen the file to get its durable state.
    pub fn commit(&mut self) -> Result<()> {
        self.writable()?;
        if !self.has_changes()
            && self.page_count == self.committed.page_count
            && self.meta == self.committed.meta
        {
            return Ok(());
        }
        match self.commit_inner(true) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.poisoned = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Writes everything a commit writes; the superblock only if `switch` (tests stop
    /// before it to simulate a crash in the middle of a commit).
    pub(super) fn commit_inner(&mut self, switch: bool) -> Result<()> {
        let mut ids: Vec<u64> = self.dirty.keys().copied().collect();
        ids.sort_unstable();
        for id in &ids {
            if let Some(node) = self.dirty.get(id) {
                self.pager.write_raw(*id, &page::encode_node(*id, node)?)?;
            }
        }
        // The free list after this commit, on pages that are free before it.
        let mut reusable = self.free.clone();
        let mut released: Vec<u64> = self.pending.clone();
        released.extend_from_slice(&self.free_list_pages);
        let mut page_count = self.page_count;
        let mut list_pages = Vec::new();
        while list_pages.len() * page::FREE_PER_PAGE < reusable.len() + released.len() {
            match reusable.pop() {
                Some(p) => list_pages.push(p),
                None => {
                    list_pages.push(page_count);
                    page_count += 1;
                }
            }
        }
        let mut free = reusable;
        free.extend_from_slice(&released);
        free.sort_unstable();
        for (i, chunk) in free.chunks(page::FREE_PER_PAGE).enumerate() {
            let (Some(&at), next) = (list_pages.get(i), list_pages.get(i + 1)) else {
                return Err(internal("free-list pages miscounted"));
            };
            self.pager.cache.remove(at);
            self.pager.write_raw(
                at,
                &page::encode_free(at, chunk, next.copied().unwrap_or(0)),
            )?;
        }
        self.pager.sync()?;
        let generation = self.committed.generation.checked_add(1).ok_or_else(|| {
            Error::Corruption(format!(
                "{}: superblock generation {} cannot grow",
                self.pager.path().display(),
                self.committed.generation
            ))
        })?;
        let sb = Superblock {
            generation,
            root: self.root,
            len: self.len,
            page_count,
            free_head: list_pages.first().copied().unwrap_or(0),
            meta: self.meta,
        };
        if !switch {
            return Ok(());
        }
        self.pager.write_superblock(&sb)?;
        for (id, node) in self.dirty.drain() {
            self.pager.cache.insert(id, node);
        }
        self.committed = sb;
        self.page_count = page_count;
        self.committed_free = free.clone();
        self.free = free;
        self.free_list_pages = list_pages;
        self.pending.clear();
        self.fresh.clear();
        Ok(())
    }

    /// Verifies the whole structure: every reachable page read from disk (or memory, if
    /// uncommitted) with its checksum, key order within and across pages, equal leaf
    /// depth, the entry count, the committed free list, and that every page of the file
    /// is used exactly once (live, free, pending or free list).
    pub fn check(&self) -> Result<Stats> {
        let path = self.pager.path().display().to_string();
        let corrupt = |what: String| Error::Corruption(format!("{path}: B-tree check: {what}"));
        let on_disk = self.pager.read_superblock()?;
        if on_disk != self.committed {
            return Err(corrupt(format!(
                "superblock on disk {on_disk:?} is not the committed {:?}",
                self.committed
            )));
        }
        let mut stats = Stats {
            generation: self.committed.generation,
            page_count: self.page_count,
            ..Stats::default()
        };
        let mut seen: HashSet<u64> = HashSet::new();
        let mut leaf_depth: Option<usize> = None;
        type Frame = (u64, Option<Key>, Option<Key>, usize);
        let mut stack: Vec<Frame> = vec![(self.root, None, None, 1)];
        while let Some((id, lower, upper, depth)) = stack.pop() {
            if id < FIRST_DATA_PAGE || id >= self.page_count {
                return Err(corrupt(format!("page {id} out of range")));
            }
            if !seen.insert(id) {
                return Err(corrupt(format!("page {id} is used twice")));
            }
            let node = match self.dirty.get(&id) {
                Some(n) => n.clone(),
                None => Arc::new(page::decode_node(id, &self.pager.read_raw(id)?)?),
            };
            let in_bounds = |k: &[u8]| {
                lower.as_deref().is_none_or(|l| l <= k) && upper.as_deref().is_none_or(|u| k < u)
            };
            let keys: Vec<&[u8]> = match &*node {
                Node::Leaf { entries } => entries.iter().map(|(k, _)| k).collect(),
                Node::Branch { keys, .. } => keys.iter().map(|k| k.as_slice()).collect(),
            };
            if keys.windows(2).any(|w| w.first() >= w.get(1)) {
                return Err(corrupt(format!("keys of page {id} are not ascending")));
            }
            if let Some(k) = keys.iter().find(|k| !in_bounds(k)) {
                return Err(corrupt(format!(
                    "page {id} holds key {k:02x?} outside its parent's bounds"
                )));
            }
            if !node.fits() {
                return Err(corrupt(format!("page {id} overflows")));
            }
            match &*node {
                Node::Leaf { entries } => {
                    stats.leaves += 1;
                    stats.entries += entries.len() as u64;
                    if entries.is_empty() && id != self.root {
                        return Err(corrupt(format!("leaf {id} is empty")));
                    }
                    if *leaf_depth.get_or_insert(depth) != depth {
                        return Err(corrupt(format!("leaf {id} at depth {depth}")));
                    }
                }
                Node::Branch { keys, children } => {
                    stats.branches += 1;
                    if children.len() != keys.len() + 1 || (id == self.root && keys.is_empty()) {
                        return Err(corrupt(format!(
                            "branch {id} has {} keys and {} children",
                            keys.len(),
                            children.len()
                        )));
                    }
                    for (i, &c) in children.iter().enumerate() {
                        let lo = if i == 0 {
                            lower.clone()
                        } else {
                            keys.get(i - 1).cloned()
                        };
                        let hi = keys.get(i).cloned().or_else(|| upper.clone());
                        stack.push((c, lo, hi, depth + 1));
                    }
                }
            }
        }
        stats.height = leaf_depth.unwrap_or(0);
        stats.live_pages = seen.len() as u64;
        if stats.entries != self.len {
            return Err(corrupt(format!(
                "{} entries, count says {}",
                stats.entries, self.len
            )));
        }
        let (disk_free, disk_list) = self
            .pager
            .read_free_list(self.committed.free_head, self.committed.page_count)?;
        let mut a = disk_free;
        let mut b = self.committed_free.clone();
        a.sort_unstable();
        b.sort_unstable();
        if a != b || disk_list != self.free_list_pages {
            return Err(corrupt("free list on disk differs from memory".into()));
        }
        for (what, pages) in [
            ("free", &self.free),
            ("pending", &self.pending),
            ("free-list", &self.free_list_pages),
        ] {
            for &p in pages {
                if p < FIRST_DATA_PAGE || p >= self.page_count || !seen.insert(p) {
                    return Err(corrupt(format!(
                        "{what} page {p} is live, repeated or out of range"
                    )));
                }
            }
        }
        stats.free_pages = (self.free.len() + self.pending.len()) as u64;
        stats.free_list_pages = self.free_list_pages.len() as u64;
        let accounted = seen.len() as u64 + FIRST_DATA_PAGE;
        if accounted != self.page_count {
            return Err(corrupt(format!(
                "{accounted} pages accounted for, file has {}",
                self.page_count
            )));
        }
        Ok(stats)
    }
}

/// Splits an over-full node into two that fit, with the separator between them.
fn split(node: Node) -> Result<(Node, Key, Node)> {
    match node {
        Node::Leaf { entries } => {
            let sizes: Vec<usize> = entries
                .iter()
                .map(|(k, v)| page::leaf_entry_size(k, v))
                .collect();
            let at = best_cut(&sizes, false).ok_or_else(|| internal("leaf cannot split"))?;
            cut_leaf(entries, at)
        }
        Node::Branch {
            mut keys,
            mut children,
        } => {
            let sizes: Vec<usize> = keys.iter().map(|k| page::branch_key_size(k)).collect();
            let at = best_cut(&sizes, true).ok_or_else(|| internal("branch cannot split"))?;
            let right_keys = keys.split_off(at + 1);
            let sep = keys.pop().ok_or_else(|| internal("branch separator"))?;
            let right_children = children.split_off(at + 1);
            Ok((
                Node::Branch { keys, children },
                sep,
                Node::Branch {
                    keys: right_keys,
                    children: right_children,
                },
            ))
        }
    }
}

/// A leaf's entries cut before entry `at`: the two leaves and the separator (the right
/// one's first key).
fn cut_leaf(mut entries: Entries, at: usize) -> Result<(Node, Key, Node)> {
    let right = entries.split_off(at);
    let sep = right
        .key(0)
        .map(Key::from_slice)
        .ok_or_else(|| internal("empty right leaf"))?;
    Ok((Node::Leaf { entries }, sep, Node::Leaf { entries: right }))
}

/// Where to cut items of these sizes so both halves fit a page and are as even as
/// possible: leaves split before item `at` (1..n); branches promote item `at` (0..n).
fn best_cut(sizes: &[usize], promote: bool) -> Option<usize> {
    let total: usize = sizes.iter().sum();
    let mut best: Option<(usize, usize)> = None;
    let mut left = 0usize;
    for (i, s) in sizes.iter().enumerate() {
        let (l, r) = if promote {
            (left, total - left - s)
        } else {
            (left, total - left)
        };
        let valid = if promote { true } else { i > 0 };
        let worst = page::HEADER + l.max(r);
        if valid && worst <= PAGE_SIZE && best.is_none_or(|(_, w)| worst < w) {
            best = Some((i, worst));
        }
        left += s;
    }
    best.map(|(i, _)| i)
}
