//! `tissdb import` and `tissdb export` against a running server: a generated 50k-row CSV
//! file imported in several chunks and exported again byte for byte, NDJSON and XML
//! round trips, and a refused chunk reported with the file's line.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::Server;
use serde_json::{Value as Json, json};

fn tissdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tissdb"))
        .args(args)
        .output()
        .expect("run tissdb")
}

#[track_caller]
fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "tissdb failed: {stderr}");
    stderr
}

fn count(s: &Server, collection: &str) -> u64 {
    let r = s.post_json(
        &format!("/{collection}/_query"),
        &json!({"query": format!("SELECT count(*) AS n FROM {collection}")}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()[0]["n"].as_u64().expect("a count")
}

/// A CSV file of `rows` rows with values that need quoting and typing.
fn write_csv(path: &Path, rows: usize) {
    let mut text = String::from("id,zip,price,qty,brand,note\n");
    for i in 0..rows {
        let note = match i % 4 {
            0 => "plain".to_string(),
            1 => format!("\"comma, {i}\""),
            2 => format!("\"quote \"\"{i}\"\"\nnewline\""),
            _ => String::new(),
        };
        text.push_str(&format!(
            "k{i:06},{:05},{}.{:02},{},brand_{:02},{note}\n",
            i % 100_000,
            i % 1000,
            i % 100,
            i % 7,
            i % 50
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn csv_file_of_50k_rows_round_trips_through_the_cli() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("items.csv");
    write_csv(&file, 50_000);
    let url = s.base_url();
    let f = file.to_str().unwrap();
    // About 13 chunks of 200 kB; --create makes the collection.
    let stderr = ok(&tissdb(&[
        "import",
        "--collection",
        "items",
        "--url",
        &url,
        "--chunk-size",
        "200000",
        "--create",
        f,
    ]));
    assert!(stderr.contains("imported 50000 documents"), "{stderr}");
    assert_eq!(count(&s, "items"), 50_000);
    assert_eq!(
        s.get_doc("items", "k000002"),
        Some(
            json!({"id": "k000002", "zip": "00002", "price": 2.02, "qty": 2, "brand": "brand_02", "note": "quote \"2\"\nnewline"})
        )
    );
    assert_eq!(
        s.get_doc("items", "k000003"),
        Some(
            json!({"id": "k000003", "zip": "00003", "price": 3.03, "qty": 3, "brand": "brand_03"})
        )
    );

    // Export, import the export elsewhere, export again: the same bytes.
    let out1 = dir.path().join("out1.csv");
    let stderr = ok(&tissdb(&[
        "export",
        "--collection",
        "items",
        "--url",
        &url,
        "--page-size",
        "7000",
        out1.to_str().unwrap(),
    ]));
    assert!(stderr.contains("exported 50000 documents"), "{stderr}");
    ok(&tissdb(&[
        "import",
        "-c",
        "copy",
        "--url",
        &url,
        "--create",
        out1.to_str().unwrap(),
    ]));
    let out2 = dir.path().join("out2.csv");
    ok(&tissdb(&[
        "export",
        "-c",
        "copy",
        "--url",
        &url,
        out2.to_str().unwrap(),
    ]));
    let (a, b) = (std::fs::read(&out1).unwrap(), std::fs::read(&out2).unwrap());
    assert_eq!(a.len(), b.len());
    assert!(a == b, "the two exports differ");
    // The original file's rows are all there (the export is in id order, as generated).
    let original = std::fs::read_to_string(&file).unwrap();
    let exported = String::from_utf8(a).unwrap();
    assert!(
        exported.starts_with("id,zip,price,qty,brand,note\nk000000,00000,0.0,0,brand_00,plain\n"),
        "{}",
        &exported[..200]
    );
    assert_eq!(original.lines().count(), exported.lines().count());
}

#[test]
fn ndjson_and_xml_files_round_trip() {
    let s = Server::start();
    s.create_collection("src");
    let docs: Vec<Json> = (0..3000)
        .map(|i| {
            json!({"id": format!("d{i:05}"), "n": i, "s": format!("{i:04}"), "nested": {"a": [i, "x"]},
                   "when": {"$date": "2023-10-26T10:00:00Z"}, "f": 1.5})
        })
        .collect();
    let r = s.post_json("/src", &Json::Array(docs));
    assert_eq!(r.status, 201, "{}", r.text);
    let dir = tempfile::tempdir().unwrap();
    let url = s.base_url();
    let expected = s.list_all("src");
    for (ext, target) in [("ndjson", "from_nd"), ("xml", "from_xml")] {
        let path = dir.path().join(format!("src.{ext}"));
        let p = path.to_str().unwrap();
        let stderr = ok(&tissdb(&[
            "export",
            "-c",
            "src",
            "--url",
            &url,
            "--page-size",
            "1000",
            p,
        ]));
        assert!(
            stderr.contains("exported 3000 documents"),
            "{ext}: {stderr}"
        );
        ok(&tissdb(&[
            "import",
            "-c",
            target,
            "--url",
            &url,
            "--create",
            "--chunk-size",
            "50000",
            p,
        ]));
        let back = s.list_all(target);
        assert_eq!(back.len(), expected.len(), "{ext}");
        assert!(back == expected, "{ext} round trip differs");
    }
    // A JSON array file.
    let path = dir.path().join("arr.json");
    std::fs::write(
        &path,
        json!([{"id": "x", "v": [1]}, {"id": "y"}]).to_string(),
    )
    .unwrap();
    ok(&tissdb(&[
        "import",
        "-c",
        "arr",
        "--url",
        &url,
        "--create",
        path.to_str().unwrap(),
    ]));
    assert_eq!(s.get_doc("arr", "x"), Some(json!({"id": "x", "v": [1]})));
}

#[test]
fn a_refused_chunk_is_reported_with_the_file_line() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.csv");
    let mut text = String::from("id,n\n");
    for i in 0..1000 {
        text.push_str(&format!("r{i:04},{i}\n"));
    }
    // Line 1002 of the file (document 1001) repeats an id.
    text.push_str("r0001,dup\n");
    std::fs::write(&file, text).unwrap();
    let url = s.base_url();
    let out = tissdb(&[
        "import",
        "-c",
        "c",
        "--url",
        &url,
        "--create",
        "--chunk-size",
        "4000",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 1002") && stderr.contains("document 1001"),
        "{stderr}"
    );
    assert!(stderr.contains("23505"), "{stderr}");
    // The chunks before the refused one stay; nothing of the refused one does.
    let stored = count(&s, "c");
    assert!(stored < 1000 && stored > 0, "{stored}");
    assert!(
        stderr.contains(&format!(
            "{stored} documents of earlier chunks were imported"
        )),
        "{stderr}"
    );

    // An unknown format and an unreachable server fail with a message, not a panic.
    let odd = dir.path().join("data.txt");
    std::fs::write(&odd, "x").unwrap();
    let out = tissdb(&["import", "-c", "c", "--url", &url, odd.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"));
    let port = common::free_port();
    let out = tissdb(&[
        "import",
        "-c",
        "c",
        "--url",
        &format!("http://127.0.0.1:{port}"),
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the server"));
}
