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
