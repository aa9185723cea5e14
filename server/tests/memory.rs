//! The server's memory settings as the kernel sees them: `transparent_huge_pages` (off
//! by default) sets the process's THP flag, which `/proc/<pid>/status` reports.

mod common;

use common::Server;

/// `THP_enabled` of the server's process (None where the kernel does not report it).
fn thp_enabled(s: &Server) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(|v| v.trim().to_string())
}

#[test]
fn transparent_huge_pages_are_off_unless_the_setting_allows_them() {
    let off = Server::start();
    let Some(flag) = thp_enabled(&off) else {
        eprintln!("this kernel reports no THP_enabled; nothing to check");
        return;
    };
    assert_eq!(flag, "0", "THP by default");
    // The server works as ever.
    assert_eq!(off.get("/").status, 200);
    let on = Server::start_with_env(&[("TISSDB_TRANSPARENT_HUGE_PAGES", "true")]);
    assert_eq!(thp_enabled(&on).as_deref(), Some("1"), "THP allowed");
}

/// `VmHWM` and `VmRSS` of the server's process, in KiB.
fn peak_and_resident(s: &Server) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    let kib = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (kib("VmHWM:"), kib("VmRSS:"))
}

/// Table `t (id, name, n)` with `rows` rows by COPY (`n` is `id % 977`).
fn load_rows(c: &mut postgres::Client, rows: u64) {
    c.batch_execute("CREATE TABLE t (id integer PRIMARY KEY, name text, n integer)")
        .unwrap();
    let mut csv = String::new();
    for i in 0..rows {
        csv.push_str(&format!("{i},name number {i},{}\n", i % 977));
    }
    let mut w = c.copy_in("COPY t FROM STDIN (FORMAT csv)").unwrap();
    std::io::Write::write_all(&mut w, csv.as_bytes()).unwrap();
    assert_eq!(w.finish().unwrap(), rows);
}

/// A bulk load, then a pause and a few small statements: what is still resident of the
/// memory the load took and freed.
fn resident_after_a_load(env: &[(&str, &str)]) -> (u64, u64) {
    let s = Server::start_with_env(env);
    let mut c = common::pg_client(&s);
    load_rows(&mut c, 150_000);
    c.batch_execute("CREATE INDEX t_n ON t (n)").unwrap();
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let n: i64 = c
            .query_one("SELECT count(*) FROM t WHERE n = 5", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 154);
    }
    peak_and_resident(&s)
}

#[test]
fn memory_a_load_freed_goes_back_to_the_kernel_promptly() {
    // By default (100 ms) most of what the load freed is returned; kept for an hour, it
    // stays resident.
    let (peak, resident) = resident_after_a_load(&[]);
    let (kept_peak, kept_resident) =
        resident_after_a_load(&[("TISSDB_ALLOCATOR_PURGE_DELAY_MS", "3600000")]);
    eprintln!("default: peak {peak} KiB, resident {resident}; kept: {kept_peak}, {kept_resident}");
    assert!(
        resident + 4096 < peak,
        "default: {resident} KiB resident after a peak of {peak}"
    );
    assert!(
        kept_resident + 2048 > kept_peak,
        "kept for an hour: {kept_resident} KiB resident after a peak of {kept_peak}"
    );
}

/// The block cache's bytes as `GET /` reports them.
fn block_cache_bytes(s: &Server) -> u64 {
    let info = s.get("/").json();
    info["memory"]["block_cache_bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no memory.block_cache_bytes in {info}"))
}

#[test]
fn an_index_build_reads_its_table_past_the_block_cache() {
    let s = Server::start();
    let mut c = common::pg_client(&s);
    load_rows(&mut c, 60_000);
    let info = s.get("/").json();
    for field in ["memtables_bytes", "block_cache_bytes", "index_cache_bytes"] {
        assert!(info["memory"][field].is_u64(), "{field} in {info}");
    }
    let before = block_cache_bytes(&s);
    // The build reads every row once (in segments: the COPY wrote them there), and
    // leaves the cache as it found it.
    c.batch_execute("CREATE INDEX t_n ON t (n)").unwrap();
    let after_build = block_cache_bytes(&s);
    assert!(
        after_build < before + (64 << 10),
        "the build put {} bytes in the block cache",
        after_build - before
    );
    let rows: Vec<i32> = c
        .query("SELECT id FROM t WHERE n = 976 ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = (0..60_000).filter(|i| i % 977 == 976).collect();
    assert_eq!(rows, expected, "the index holds every row");
    // A query's scan does fill it (the measure can see blocks come in).
    let sum: i64 = c.query_one("SELECT sum(n) FROM t", &[]).unwrap().get(0);
    assert_eq!(sum, (0..60_000i64).map(|i| i % 977).sum::<i64>());
    assert!(
        block_cache_bytes(&s) > after_build + (1 << 20),
        "a full scan left {} bytes in the block cache",
        block_cache_bytes(&s)
    );
}
