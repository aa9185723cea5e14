//! Deletion reaches the disk: after DELETE and a compaction, a deleted document's content
//! is in no file of the data directory, raw or inside any zstd frame.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::Server;
use serde_json::{Value as Json, json};

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Everything that can be decompressed from `bytes`: from every occurrence of the zstd
/// magic, frames are decoded until the decoder fails, keeping what came out.
fn zstd_payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = find(&bytes[from..], &ZSTD_MAGIC) {
        let at = from + rel;
        let mut decoded = Vec::new();
        if let Ok(mut decoder) = zstd::stream::read::Decoder::with_buffer(&bytes[at..]) {
            let mut buf = [0u8; 8192];
            loop {
                match decoder.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => decoded.extend_from_slice(&buf[..n]),
                }
            }
        }
        if !decoded.is_empty() {
            out.push(decoded);
        }
        from = at + 1;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where `marker` occurs under `dir`: "<file>" for raw bytes, "<file> (zstd frame at
/// N)" for decompressed data.
fn scan_for(dir: &Path, marker: &str) -> Vec<String> {
    let needle = marker.as_bytes();
    let mut hits = Vec::new();
    for file in common::files_under(dir) {
        let bytes = common::read_file(&file);
        if find(&bytes, needle).is_some() {
            hits.push(format!("{} (raw)", file.display()));
        }
        for (i, payload) in zstd_payloads(&bytes).iter().enumerate() {
            if find(payload, needle).is_some() {
                hits.push(format!("{} (zstd payload #{i})", file.display()));
            }
        }
    }
    hits
}

/// The number of zstd frames found under `dir` that decode to something.
fn zstd_frame_count(dir: &Path) -> usize {
    common::files_under(dir)
        .iter()
        .map(|f| zstd_payloads(&common::read_file(f)).len())
        .sum()
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    common::files_under(dir)
}

/// A hierarchical document holding the secret in a nested field (XML blocks).
fn victim_nested(marker: &str) -> Json {
    json!({
        "id": "victim",
        "name": "Smart Watch",
        "specs": {"serial": marker, "features": ["a", "b"]},
        "price": 299.99
    })
}

/// A flat document holding the secret (a block of scalar rows may be CSV).
fn victim_flat(marker: &str) -> Json {
    json!({"id": "victim", "name": "Smart Watch", "serial": marker, "price": 299.99})
}

fn others(flat: bool) -> Vec<Json> {
    (0..40)
        .map(|i| {
            if flat {
                json!({"id": format!("other{i:02}"), "name": format!("item {i}"), "serial": format!("S{i}"), "price": i as f64 + 0.5})
            } else {
                json!({"id": format!("other{i:02}"), "name": format!("item {i}"),
                    "specs": {"serial": format!("S{i}"), "features": [i]}, "price": i as f64 + 0.5})
            }
        })
        .collect()
}

fn deleted_document_leaves_no_trace(flat: bool) {
    let mut s = Server::start();
    s.create_collection("products");
    let marker = format!("SECRET-{}", common::random_hex());
    let victim = if flat {
        victim_flat(&marker)
    } else {
        victim_nested(&marker)
    };
    let others = others(flat);
    for d in &others[..20] {
        s.insert("products", d);
    }
    s.insert("products", &victim);
    for d in &others[20..] {
        s.insert("products", d);
    }
    s.compact("products");

    // Positive control: the scanner finds the secret where the data lives.
    let hits = scan_for(s.data_dir(), &marker);
    assert!(
        !hits.is_empty(),
        "positive control failed: the marker is not found in {:?} ({} zstd frames)",
        listing(s.data_dir()),
        zstd_frame_count(s.data_dir())
    );
    eprintln!("before the delete, the marker is in: {hits:?}");

    let r = s.delete("/products/victim");
    assert_eq!(r.status, 200, "{}", r.text);
    s.compact("products");

    let hits = scan_for(s.data_dir(), &marker);
    assert!(
        hits.is_empty(),
        "the deleted document's marker is still on disk after compaction: {hits:?}"
    );
    assert_eq!(s.get_doc("products", "victim"), None);
    for d in &others {
        assert_eq!(
            s.get_doc("products", d["id"].as_str().unwrap()).as_ref(),
            Some(d)
        );
    }
    assert_eq!(s.list_all("products"), others);

    // Still gone after a clean restart, and nothing brings it back.
    s.terminate();
    s.restart();
    assert_eq!(s.get_doc("products", "victim"), None);
    assert_eq!(s.list_all("products"), others);
    assert!(scan_for(s.data_dir(), &marker).is_empty());
}

#[test]
fn deleted_nested_document_is_purged_from_disk() {
    deleted_document_leaves_no_trace(false);
}

#[test]
fn deleted_flat_document_is_purged_from_disk() {
    deleted_document_leaves_no_trace(true);
}

#[test]
fn replaced_version_is_purged_from_disk() {
    let s = Server::start();
    s.create_collection("products");
    let marker = format!("SECRET-{}", common::random_hex());
    for d in others(false) {
        s.insert("products", &d);
    }
    s.insert("products", &victim_nested(&marker));
    s.compact("products");
    assert!(
        !scan_for(s.data_dir(), &marker).is_empty(),
        "positive control: marker not found"
    );

    let new = json!({"id": "victim", "name": "Smart Watch", "specs": {"serial": "redacted"}});
    let r = s.put_json("/products/victim", &new);
    assert_eq!(r.status, 200, "{}", r.text);
    s.compact("products");
    let hits = scan_for(s.data_dir(), &marker);
    assert!(
        hits.is_empty(),
        "the old version is still on disk: {hits:?}"
    );
    assert_eq!(s.get_doc("products", "victim"), Some(new));
    assert_eq!(s.list_all("products").len(), 41);
}

#[test]
fn dropped_collection_is_purged_from_disk() {
    let s = Server::start();
    s.create_collection("doomed");
    s.create_collection("kept");
    let marker = format!("SECRET-{}", common::random_hex());
    s.insert("doomed", &victim_nested(&marker));
    for d in others(false) {
        s.insert("doomed", &d);
        s.insert("kept", &d);
    }
    s.compact("kept");
    assert!(
        !scan_for(s.data_dir(), &marker).is_empty(),
        "positive control: marker not found"
    );

    let r = s.delete("/doomed");
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    s.compact("kept");
    let hits = scan_for(s.data_dir(), &marker);
    assert!(
        hits.is_empty(),
        "the dropped collection's data is still on disk: {hits:?}"
    );
    assert_eq!(s.list_all("kept"), others(false));

    // A new collection of the same name starts empty.
    s.create_collection("doomed");
    assert_eq!(s.list_all("doomed"), Vec::<Json>::new());
}

#[test]
fn delete_before_any_flush_leaves_no_trace() {
    // The document never reached a segment: it lives in the WAL and the memtable only.
    let s = Server::start();
    s.create_collection("products");
    let marker = format!("SECRET-{}", common::random_hex());
    for d in others(true) {
        s.insert("products", &d);
    }
    s.insert("products", &victim_flat(&marker));
    assert!(
        !scan_for(s.data_dir(), &marker).is_empty(),
        "positive control: the acknowledged write is not in the WAL"
    );
    let r = s.delete("/products/victim");
    assert_eq!(r.status, 200, "{}", r.text);
    s.compact("products");
    let hits = scan_for(s.data_dir(), &marker);
    assert!(hits.is_empty(), "still on disk: {hits:?}");
    assert_eq!(s.list_all("products"), others(true));
}

#[test]
fn dropped_collection_stays_dropped_after_a_crash() {
    let mut s = Server::start();
    s.create_collection("doomed");
    s.create_collection("kept");
    let marker = format!("SECRET-{}", common::random_hex());
    s.insert("doomed", &victim_nested(&marker));
    for d in others(true) {
        s.insert("doomed", &d);
        s.insert("kept", &d);
    }
    s.compact("kept"); // the doomed documents are now in a segment
    let r = s.delete("/doomed");
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    s.kill_9();
    s.restart();
    assert!(!s.collections().contains(&"doomed".to_string()));
    s.get("/doomed").assert_error(404, "42P01");
    // A new collection of the same name does not see the old documents.
    s.create_collection("doomed");
    assert_eq!(s.list_all("doomed"), Vec::<Json>::new());
    assert_eq!(s.get_doc("doomed", "victim"), None);
    assert_eq!(s.list_all("kept"), others(true));
    s.compact("kept");
    let hits = scan_for(s.data_dir(), &marker);
    assert!(
        hits.is_empty(),
        "the dropped collection's data is still on disk: {hits:?}"
    );
}
