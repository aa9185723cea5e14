//! The memory a memtable holds against the size it counts (`Memtable::size`), which is
//! what `memtable_size` bounds: measured by dhat's allocator, the bytes the table's
//! allocations request (the skip list's nodes, the point index, the values, the bloom
//! filter) for rows like W1's (a 15-byte key, a 40-byte record).

use tissdb::storage::memtable::Memtable;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn a_memtables_counted_size_covers_the_heap_it_holds() {
    let _profiler = dhat::Profiler::builder().testing().build();
    const ROWS: u64 = 50_000;
    let before = dhat::HeapStats::get().curr_bytes;
    let m = Memtable::with_capacity(ROWS * 200);
    for i in 0..ROWS {
        let mut key = 7u32.to_be_bytes().to_vec();
        key.extend_from_slice(format!("R{:010}", i * 7919 % 1_000_003).as_bytes());
        m.insert(key, i + 1, Some(vec![(i % 251) as u8; 40]));
    }
    let held = (dhat::HeapStats::get().curr_bytes - before) as u64;
    let counted = m.size();
    eprintln!(
        "{ROWS} rows: {held} bytes held ({} a row), {counted} counted ({} a row)",
        held / ROWS,
        counted / ROWS
    );
    assert!(
        counted >= held,
        "the table counts {counted} bytes and holds {held}"
    );
}
