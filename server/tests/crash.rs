//! Crashes: SIGKILL mid-stream, corrupt WAL tails, restarts after flush and compaction.
//! Every write acknowledged with 201 must be there after a restart, whole.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, http_client};
use serde_json::{Value as Json, json};

/// The body writer `w` sends as its `i`-th document: deterministic, so any document found
/// after a crash can be checked against what was sent, acknowledged or not.
fn writer_doc(w: usize, i: usize) -> Json {
    json!({
        "id": format!("w{w}-{i:05}"),
        "writer": w,
        "seq": i,
        "price": i as f64 + 0.25,
        "payload": format!("{}|{w}|{i}", "p".repeat(150 + (i * 7 + w) % 200)),
        "specs": {"tags": ["a", w, i], "nested": {"even": i.is_multiple_of(2)}},
    })
}

/// Parses `w<w>-<i>` back into (w, i).
fn parse_writer_id(id: &str) -> Option<(usize, usize)> {
    let (w, i) = id.strip_prefix('w')?.split_once('-')?;
    Some((w.parse().ok()?, i.parse().ok()?))
}

/// Runs `writers` threads POSTing distinct documents (each at most `per_writer`), kills
/// the server with SIGKILL once `kill_after` writes were acknowledged (or after a
/// deadline), and returns the acknowledged ids. With `compactor`, another thread runs
/// `POST /<collection>/_compact` in a loop meanwhile.
fn write_until_killed(
    s: &mut Server,
    collection: &str,
    writers: std::ops::Range<usize>,
    per_writer: usize,
    kill_after: usize,
    compactor: bool,
) -> Vec<(usize, usize)> {
    let url = s.url(&format!("/{collection}"));
    let acked = Mutex::new(Vec::new());
    let acked_count = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let finished = AtomicUsize::new(0);
    let writer_count = writers.len();
    let compactions = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        if compactor {
            let (url, stop, compactions) = (&url, &stop, &compactions);
            scope.spawn(move || {
                let client = http_client();
                while !stop.load(Ordering::Relaxed) {
                    match client.post(format!("{url}/_compact")).send() {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let text = r.text().unwrap_or_default();
                            if status != 200 && text.is_empty() {
                                break; // cut off by the kill
                            }
                            assert_eq!(status, 200, "compaction during writes: {text}");
                            compactions.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                }
            });
        }
        for w in writers {
            let (url, acked, acked_count, stop, finished) =
                (&url, &acked, &acked_count, &stop, &finished);
            scope.spawn(move || {
                let client = http_client();
                for i in 0..per_writer {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let sent = client
                        .post(url.as_str())
                        .header("Content-Type", "application/json")
                        .body(writer_doc(w, i).to_string())
                        .send();
                    match sent {
                        Ok(r) if r.status().as_u16() == 201 => {
                            // Acknowledged: the answer must echo the document.
                            let body: Json = match r.json() {
                                Ok(b) => b,
                                Err(_) => break, // cut off mid-answer by the kill
                            };
                            assert_eq!(body, writer_doc(w, i), "echo of w{w}-{i}");
                            acked.lock().unwrap().push((w, i));
                            acked_count.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            let status = r.status();
                            let text = r.text().unwrap_or_default();
                            panic!("w{w}-{i}: unexpected status {status}: {text}");
                        }
                        // The server is gone.
                        Err(_) => break,
                    }
                }
                finished.fetch_add(1, Ordering::Relaxed);
            });
        }
        // Kill once enough writes were acknowledged; the writers have far more to do, so
        // they are mid-stream. The deadline only bounds a very slow machine.
        let deadline = Instant::now() + Duration::from_secs(15);
        while acked_count.load(Ordering::Relaxed) < kill_after
            && finished.load(Ordering::Relaxed) < writer_count
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        s.kill_9();
        stop.store(true, Ordering::Relaxed);
    });
    let acked = acked.into_inner().unwrap();
    let n = acked.len();
    eprintln!(
        "{n} writes acknowledged before SIGKILL ({} compactions ran meanwhile)",
        compactions.load(Ordering::Relaxed)
    );
    assert!(n > 0, "no write was acknowledged; stderr:\n{}", s.stderr());
    acked
}

/// After a restart: every acknowledged document is there and equal to what was sent,
/// and every document listed is one that was sent, whole.
fn check_after_crash(s: &Server, collection: &str, acked: &[(usize, usize)]) {
    for &(w, i) in acked {
        let id = format!("w{w}-{i:05}");
        let got = s.get_doc(collection, &id);
        assert_eq!(
            got,
            Some(writer_doc(w, i)),
            "acknowledged document {id} lost or changed"
        );
    }
    let listed = s.list_all(collection);
    let mut previous: Option<String> = None;
    for doc in &listed {
        let id = doc["id"]
            .as_str()
            .unwrap_or_else(|| panic!("listed document without a string id: {doc}"));
        let (w, i) = parse_writer_id(id).unwrap_or_else(|| panic!("unknown document {doc}"));
        assert_eq!(doc, &writer_doc(w, i), "torn or foreign document {id}");
        if let Some(p) = &previous {
            assert!(p.as_str() < id, "listing out of order: {p} then {id}");
        }
        previous = Some(id.to_string());
    }
    assert!(
        listed.len() >= acked.len(),
        "{} listed < {} acknowledged",
        listed.len(),
        acked.len()
    );
    // The document count the planner and the catalogs use survived as the data did.
    let sql = format!(
        "SELECT count(*) AS n, (SELECT n_live_tup FROM pg_stat_user_tables \
         WHERE relname = '{collection}') AS live FROM {collection}"
    );
    let counts = s
        .post_json(
            &format!("/{collection}/_query"),
            &serde_json::json!({ "query": sql }),
        )
        .json();
    assert_eq!(counts[0]["n"], serde_json::json!(listed.len()), "{counts}");
    assert_eq!(
        counts[0]["live"], counts[0]["n"],
        "kept count after the crash: {counts}"
    );
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    common::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect()
}

#[test]
fn sigkill_during_concurrent_writes_loses_no_acknowledged_write() {
    let mut s = Server::start();
    s.create_collection("crash");
    let acked = write_until_killed(&mut s, "crash", 0..8, 3000, 400, false);
    s.restart();
    check_after_crash(&s, "crash", &acked);
    // The database keeps working: new writes, and a second restart.
    s.insert("crash", &writer_doc(99, 0));
    s.terminate();
    s.restart();
    check_after_crash(&s, "crash", &acked);
    assert_eq!(s.get_doc("crash", "w99-00000"), Some(writer_doc(99, 0)));
}

#[test]
fn sigkill_during_writes_with_flushes_and_compactions() {
    let mut s = Server::start_with_env(&[
        ("TISSDB_MEMTABLE_SIZE", "64KiB"),
        ("TISSDB_BLOCK_SIZE", "4KiB"),
    ]);
    s.create_collection("crash");
    // ~1500 documents of ~400 bytes: several 64 KiB memtables flushed while writing.
    let acked = write_until_killed(&mut s, "crash", 0..8, 3000, 1500, false);
    let segments = segment_files(s.data_dir());
    assert!(
        !segments.is_empty(),
        "no segment was flushed during the stream (memtable 64 KiB)"
    );
    s.restart();
    check_after_crash(&s, "crash", &acked);

    // Crash again, with compactions running while the writers write.
    s.compact("crash");
    check_after_crash(&s, "crash", &acked);
    let more = write_until_killed(&mut s, "crash", 10..14, 3000, 600, true);
    s.restart();
    let mut all = acked.clone();
    all.extend(more);
    check_after_crash(&s, "crash", &all);
}

// ------------------------------------------------------------------------------------
// Corrupt WAL tails
// ------------------------------------------------------------------------------------

/// Record boundaries of a WAL file: (offset, total length) of each whole record, up to
/// the zero-filled space after them. Format: len u32 LE | crc32c u32 LE | payload.
fn wal_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= bytes.len() && bytes[pos..pos + 8].iter().any(|b| *b != 0) {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if pos + 8 + len > bytes.len() {
            break;
        }
        out.push((pos, 8 + len));
        pos += 8 + len;
    }
    out
}

/// The newest non-empty `*.wal` file of a data directory.
fn newest_wal(data: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("wal"))
        .expect("wal directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    files.sort();
    files.pop().expect("a non-empty WAL file")
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    /// Flip a byte in the last record's payload: its checksum fails.
    FlipLastRecord,
    /// Append bytes that are not a record.
    AppendGarbage,
    /// Cut the last record in the middle.
    TruncateMidRecord,
    /// Cut the last record inside its 8-byte header.
    TruncateInHeader,
}

fn corrupt_wal_tail(damage: Damage) {
    let mut s = Server::start();
    s.create_collection("docs");
    let docs: Vec<Json> = (0..20)
        .map(|i| json!({"id": format!("d{i:02}"), "i": i, "text": format!("document {i}")}))
        .collect();
    for d in &docs {
        s.insert("docs", d);
    }
    s.kill_9();

    let wal = newest_wal(s.data_dir());
    let mut bytes = std::fs::read(&wal).unwrap();
    let records = wal_records(&bytes);
    let end = records.iter().map(|r| r.1).sum::<usize>();
    assert!(
        bytes[end..].iter().all(|b| *b == 0),
        "the WAL file {} is not whole records then zeros",
        wal.display()
    );
    assert!(records.len() >= 20, "{} records", records.len());
    let (last_off, last_len) = *records.last().unwrap();
    let last_lost = match damage {
        Damage::FlipLastRecord => {
            let at = last_off + last_len - 1;
            bytes[at] ^= 0x5A;
            true
        }
        Damage::AppendGarbage => {
            // Written where the next record would go, over the zeros.
            let garbage = [0x17, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3];
            let zeros = bytes.split_off(end);
            bytes.extend_from_slice(&garbage);
            bytes.extend_from_slice(zeros.get(garbage.len()..).unwrap_or_default());
            false
        }
        Damage::TruncateMidRecord => {
            bytes.truncate(last_off + 8 + (last_len - 8) / 2);
            true
        }
        Damage::TruncateInHeader => {
            bytes.truncate(last_off + 5);
            true
        }
    };
    std::fs::write(&wal, &bytes).unwrap();

    s.restart();
    let log = s.stderr();
    assert!(
        log.contains("torn or corrupt tail"),
        "{damage:?}: the log does not report the truncation:\n{log}"
    );
    // Every record before the damaged one is served; the damaged one is gone.
    let (kept, lost) = if last_lost {
        docs.split_at(19)
    } else {
        docs.split_at(20)
    };
    for d in kept {
        assert_eq!(
            s.get_doc("docs", d["id"].as_str().unwrap()).as_ref(),
            Some(d)
        );
    }
    for d in lost {
        assert_eq!(s.get_doc("docs", d["id"].as_str().unwrap()), None);
    }
    assert_eq!(s.list_all("docs"), kept.to_vec());

    // New writes work, including the lost id, and survive a crash and a clean restart.
    let extra = json!({"id": "after", "n": 1});
    s.insert("docs", &extra);
    for d in lost {
        s.insert("docs", d);
    }
    s.kill_9();
    s.restart();
    assert!(
        !s.stderr().contains("torn or corrupt tail"),
        "the tail was not cut off the first time:\n{}",
        s.stderr()
    );
    let mut expected = docs.clone();
    expected.push(extra);
    expected.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_eq!(s.list_all("docs"), expected);
    s.terminate();
    s.restart();
    assert_eq!(s.list_all("docs"), expected);
}

#[test]
fn wal_with_flipped_byte_in_last_record() {
    corrupt_wal_tail(Damage::FlipLastRecord);
}

#[test]
fn wal_with_garbage_appended() {
    corrupt_wal_tail(Damage::AppendGarbage);
}

#[test]
fn wal_truncated_mid_record() {
    corrupt_wal_tail(Damage::TruncateMidRecord);
}

#[test]
fn wal_truncated_in_record_header() {
    corrupt_wal_tail(Damage::TruncateInHeader);
}

// ------------------------------------------------------------------------------------
// Restarts after flush and compaction
// ------------------------------------------------------------------------------------

#[test]
fn restart_after_flush_and_compaction() {
    let mut s = Server::start_with_env(&[("TISSDB_MEMTABLE_SIZE", "64KiB")]);
    s.create_collection("items");
    let mut expected: std::collections::BTreeMap<String, Json> = Default::default();
    for i in 0..300 {
        let doc = json!({"id": format!("i{i:04}"), "i": i, "pad": "q".repeat(200),
            "when": {"$date": "2023-10-26T10:00:00Z"}});
        s.insert("items", &doc);
        expected.insert(format!("i{i:04}"), doc);
    }
    let check = |s: &Server, expected: &std::collections::BTreeMap<String, Json>| {
        let listed = s.list_all("items");
        let want: Vec<Json> = expected.values().cloned().collect();
        assert_eq!(listed, want);
    };
    // Flushed by the small memtable already; now compact everything into segments.
    s.compact("items");
    assert!(!segment_files(s.data_dir()).is_empty());
    // Changes on top, only in the WAL: deletes, replaces, inserts.
    for i in (0..300).step_by(10) {
        let id = format!("i{i:04}");
        let r = s.delete(&format!("/items/{id}"));
        assert_eq!(r.status, 200, "{}", r.text);
        expected.remove(&id);
    }
    // Replacements are nested (XML blocks; a one-item array and an empty string carry
    // `t:` markers, which compaction copies with their elements).
    for i in (5..300).step_by(10) {
        let id = format!("i{i:04}");
        let doc = json!({"id": id, "replaced": true,
            "specs": {"tags": ["a"], "note": "", "size": {"w": i}}});
        let r = s.put_json(&format!("/items/{id}"), &doc);
        assert_eq!(r.status, 200, "{}", r.text);
        expected.insert(id, doc);
    }
    for i in 300..320 {
        let doc = json!({"id": format!("i{i:04}"), "i": i});
        s.insert("items", &doc);
        expected.insert(format!("i{i:04}"), doc);
    }
    s.kill_9();
    s.restart();
    check(&s, &expected);

    // Compact right before the crash: the compacted state is what comes back.
    s.compact("items");
    s.kill_9();
    s.restart();
    check(&s, &expected);

    // A clean stop exits 0 and loses nothing either.
    s.terminate();
    s.restart();
    check(&s, &expected);
    let log = s.all_stderr();
    assert!(
        !log.contains("torn or corrupt tail"),
        "no WAL damage expected here:\n{log}"
    );

    // Deleted documents stay deleted through all of it.
    assert_eq!(s.get_doc("items", "i0000"), None);
    assert_eq!(
        s.get_doc("items", "i0005"),
        Some(json!({"id": "i0005", "replaced": true,
            "specs": {"tags": ["a"], "note": "", "size": {"w": 5}}}))
    );
}

#[test]
fn sigterm_while_writing_exits_zero_and_keeps_acknowledged_writes() {
    let mut s = Server::start();
    s.create_collection("t");
    let url = s.url("/t");
    let acked = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for w in 0..4 {
            let (url, acked, stop) = (&url, &acked, &stop);
            scope.spawn(move || {
                let client = http_client();
                for i in 0..2000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = client
                        .post(url.as_str())
                        .header("Content-Type", "application/json")
                        .body(writer_doc(w, i).to_string())
                        .send();
                    match r {
                        Ok(r) if r.status().as_u16() == 201 => acked.lock().unwrap().push((w, i)),
                        Ok(r) => {
                            let status = r.status();
                            let text = r.text().unwrap_or_default();
                            panic!("w{w}-{i} during shutdown: status {status}: {text}");
                        }
                        Err(_) => break,
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while acked.lock().unwrap().len() < 200 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        s.terminate();
        stop.store(true, Ordering::Relaxed);
    });
    let acked = acked.into_inner().unwrap();
    assert!(!acked.is_empty());
    s.restart();
    check_after_crash(&s, "t", &acked);
    assert!(
        !s.stderr().contains("torn or corrupt tail"),
        "{}",
        s.stderr()
    );
}

/// SIGTERM sent as soon as the server says `ready` must still stop it cleanly (exit 0).
///
/// A regression test: until commit 1574393 server/src/main.rs printed `ready` before it
/// installed its SIGTERM handler, and about one start in four (2 cores) died of SIGTERM's
/// default action (exit status 143) here.
///
/// A shell starts the server, reads its stdout through a FIFO and sends SIGTERM with its
/// `kill` builtin the moment the `ready` line arrives, as a supervisor would; it then
/// prints the server's exit status as `exit=N`. The server listens on ports the system
/// picks (`127.0.0.1:0`): a port found free beforehand may be taken by a server of a
/// test running alongside, and a server that cannot listen exits 1 without `ready`.
#[test]
fn sigterm_right_after_ready_exits_zero() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    const SCRIPT: &str = r#"
        fifo="$1/stdout.fifo"
        mkfifo "$fifo" || exit 90
        "$2" serve --data-dir "$1/data" --http-addr "$3" --pg-addr "$4" >"$fifo" 2>/dev/null &
        pid=$!
        ready=no
        while read -r line; do
            case "$line" in
                *ready*) ready=yes; kill -TERM "$pid"; break ;;
            esac
        done <"$fifo"
        wait "$pid"
        echo "exit=$? ready=$ready"
    "#;
    let mut failures = Vec::new();
    for attempt in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let mut sh = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("sh")
            .arg(dir.path())
            .arg(env!("CARGO_BIN_EXE_tissdb"))
            .arg("127.0.0.1:0")
            .arg("127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let mut out = String::new();
        sh.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let status = sh.wait().unwrap();
        assert!(
            status.success(),
            "attempt {attempt}: the script failed: {out}"
        );
        let out = out.trim();
        if out != "exit=0 ready=yes" {
            failures.push(format!("attempt {attempt}: {out}"));
        }
    }
    assert!(
        failures.is_empty(),
        "SIGTERM right after ready did not give a clean exit 0 \
         (143 = killed by SIGTERM's default action): {failures:?}"
    );
}
