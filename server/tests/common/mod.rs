//! Test harness: runs the real `tissdb` binary on free loopback ports with a temporary
//! data directory, and talks to it over real HTTP.
//!
//! Every test owns its [`Server`]: its own ports, data directory and log files, so tests
//! run in parallel. The child is killed when the `Server` is dropped.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder};
use serde_json::Value as Json;

/// How long a server may take to print its `ready` line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The seed's example document, as the seed writes it.
pub const SEED_XML: &str = r#"<document id="product_789">
  <name>Wireless Headphones</name>
  <brand>AudioPhonic</brand>
  <price>199.99</price>
  <is_available>true</is_available>
  <release_date>2023-10-26T10:00:00Z</release_date>
  <specs>
    <weight>250g</weight>
    <bluetooth_version>5.2</bluetooth_version>
    <features>
      <feature>Noise Cancellation</feature>
      <feature>24-hour Battery</feature>
      <feature>Water Resistant</feature>
    </features>
  </specs>
  <reviews>
    <review id="rev_1">
      <rating>5</rating>
      <comment>Amazing sound quality!</comment>
    </review>
    <review id="rev_2">
      <rating>4</rating>
      <comment>Very comfortable.</comment>
    </review>
  </reviews>
</document>
"#;

/// The seed document as the document API returns it, with `price` as given.
pub fn seed_doc(price: f64) -> Json {
    serde_json::json!({
        "id": "product_789",
        "name": "Wireless Headphones",
        "brand": "AudioPhonic",
        "price": price,
        "is_available": true,
        "release_date": {"$date": "2023-10-26T10:00:00Z"},
        "specs": {
            "weight": "250g",
            "bluetooth_version": 5.2,
            "features": ["Noise Cancellation", "24-hour Battery", "Water Resistant"]
        },
        "reviews": [
            {"id": "rev_1", "rating": 5, "comment": "Amazing sound quality!"},
            {"id": "rev_2", "rating": 4, "comment": "Very comfortable."}
        ]
    })
}

/// Runs `body`, failing the test if it runs longer than `limit` (a hang is a failure,
/// not a stuck test run).
pub async fn bounded<F: std::future::Future>(what: &str, limit: Duration, body: F) -> F::Output {
    tokio::time::timeout(limit, body)
        .await
        .unwrap_or_else(|_| panic!("{what} ran longer than {limit:?}"))
}

/// A tokio-postgres client of `server`, connecting with the extra `conninfo` words
/// (`user=...`); its connection runs on a spawned task.
pub async fn pg_connect(server: &Server, conninfo: &str) -> tokio_postgres::Client {
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=tissdb connect_timeout=10 {conninfo}",
        server.pg_port()
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}; server stderr:\n{}", server.stderr()));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A blocking `postgres` client of `server` (user `tester`, database `tissdb`).
pub fn pg_client(server: &Server) -> postgres::Client {
    postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=tester dbname=tissdb connect_timeout=10",
            server.pg_port()
        ),
        postgres::NoTls,
    )
    .unwrap_or_else(|e| {
        panic!(
            "connect to tissdb: {e}; server stderr:\n{}",
            server.stderr()
        )
    })
}

/// A free loopback port: bind port 0, read the port, let the listener go.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A running (or stopped) `tissdb serve` process and everything needed to restart it on
/// the same data directory.
pub struct Server {
    child: Option<Child>,
    /// Holds the data directory (unless the caller gave one) and the log files.
    tmp: tempfile::TempDir,
    data_dir: PathBuf,
    env: Vec<(String, String)>,
    http_port: u16,
    pg_port: u16,
    /// Number of processes started so far; names the stderr log of each.
    starts: usize,
    client: Client,
}

/// An HTTP answer, read fully.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Resp {
    /// The body as JSON; panics (with the body) if it is not JSON.
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "response (status {}) is not JSON: {e}\nbody: {}",
                self.status,
                truncate(&self.text)
            )
        })
    }

    /// Asserts the status and that the body is a JSON error
    /// `{"error": {"code": <code>, "message": "<non-empty>"}}`; returns the message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "expected status {status} (code {code}), got body {}",
            truncate(&self.text)
        );
        self.assert_error_body(code)
    }

    /// Asserts the body is a JSON error with `code` (any status); returns the message.
    #[track_caller]
    pub fn assert_error_body(&self, code: &str) -> String {
        assert!(
            self.content_type.contains("application/json"),
            "error answers must be JSON, got Content-Type {:?}: {}",
            self.content_type,
            truncate(&self.text)
        );
        let body = self.json();
        let error = body
            .get("error")
            .and_then(Json::as_object)
            .unwrap_or_else(|| panic!("no \"error\" object in {body}"));
        assert_eq!(
            error.get("code").and_then(Json::as_str),
            Some(code),
            "error code in {body}"
        );
        let message = error
            .get("message")
            .and_then(Json::as_str)
            .unwrap_or_else(|| panic!("no error message in {body}"));
        assert!(!message.is_empty(), "empty error message in {body}");
        message.to_string()
    }
}

/// At most 600 characters of `s`, for panic messages.
pub fn truncate(s: &str) -> String {
    if s.len() <= 600 {
        return s.to_string();
    }
    let mut end = 600;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

/// A blocking HTTP client with generous timeouts (a server may fsync a lot).
pub fn http_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

/// A client that never reuses a connection, for requests after which the server may
/// close it.
pub fn one_shot_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .expect("reqwest client")
}

/// Sends a request and reads the whole answer; panics on a transport error.
pub fn send(request: RequestBuilder) -> Resp {
    let response = request.send().expect("HTTP request failed");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().expect("reading the response body");
    Resp {
        status,
        content_type,
        text,
    }
}

impl Server {
    /// Starts a server with a fresh data directory and default settings.
    pub fn start() -> Server {
        Server::start_with_env(&[])
    }

    /// Starts a server with a fresh data directory and `TISSDB_*` settings, e.g.
    /// `[("TISSDB_MEMTABLE_SIZE", "64KiB")]`.
    pub fn start_with_env(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix("tissdb-e2e-")
            .tempdir()
            .expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut server = Server {
            child: None,
            tmp,
            data_dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            http_port: 0,
            pg_port: 0,
            starts: 0,
            client: http_client(),
        };
        server.launch();
        server
    }

    /// The data directory (stays across restarts).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The PostgreSQL wire port of the current process.
    pub fn pg_port(&self) -> u16 {
        self.pg_port
    }

    /// `http://127.0.0.1:<port>` of the current process.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The id of the running child process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is not running").id()
    }

    fn stderr_path(&self, start: usize) -> PathBuf {
        self.tmp.path().join(format!("stderr-{start}.log"))
    }

    /// Everything the current (or last) process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path(self.starts)).unwrap_or_default()
    }

    /// What every process started so far wrote to stderr, in order.
    pub fn all_stderr(&self) -> String {
        (1..=self.starts)
            .map(|i| std::fs::read_to_string(self.stderr_path(i)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Starts the process on the data directory, retrying with other ports if a port
    /// picked as free was taken meanwhile, and waits for its `ready` line.
    ///
    /// Then it also waits until the process catches SIGTERM (`SigCgt` in `/proc/<pid>/status`). tissdb
    /// installs its handler before printing `ready` (since commit 1574393; before, a
    /// SIGTERM right after `ready` could kill it with the default action). Should that
    /// regress, `sigterm_right_after_ready_exits_zero` (crash.rs) fails, rather than
    /// random other tests.
    fn launch(&mut self) {
        assert!(self.child.is_none(), "server is already running");
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            match self.try_launch() {
                Ok(()) => return,
                Err(failure) => {
                    let port_clash = failure.contains("cannot listen");
                    last_failure = failure;
                    if !port_clash {
                        break;
                    }
                }
            }
        }
        panic!("tissdb did not start: {last_failure}");
    }

    fn try_launch(&mut self) -> Result<(), String> {
        let http_port = free_port();
        let pg_port = free_port();
        self.starts += 1;
        let stderr_path = self.stderr_path(self.starts);
        let stderr = File::create(&stderr_path).expect("create stderr log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tissdb"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http_port}"))
            .arg("--pg-addr")
            .arg(format!("127.0.0.1:{pg_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        // The server refuses unknown TISSDB_* variables; start from a clean slate.
        for (name, _) in std::env::vars() {
            if name.starts_with("TISSDB_") {
                cmd.env_remove(name);
            }
        }
        cmd.env_remove("RUST_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn tissdb");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel::<String>();
        // Reads stdout for the whole life of the process, so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) if line.contains("ready") => break,
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process is exiting.
                    let status = child.wait().ok();
                    return Err(format!(
                        "exited with {status:?} before printing ready; stderr:\n{}",
                        self.stderr()
                    ));
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "exited with {status} before printing ready; stderr:\n{}",
                    self.stderr()
                ));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tissdb printed no ready line within {READY_TIMEOUT:?}; stderr:\n{}",
                    self.stderr()
                );
            }
        }
        let pid = child.id();
        while !catches_sigterm(pid) {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "exited with {status} after ready; stderr:\n{}",
                    self.stderr()
                ));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tissdb installed no SIGTERM handler within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.http_port = http_port;
        self.pg_port = pg_port;
        self.child = Some(child);
        Ok(())
    }

    /// Kills the process with SIGKILL (no chance to flush) and reaps it.
    pub fn kill_9(&mut self) {
        let mut child = self.child.take().expect("server is not running");
        child.kill().expect("SIGKILL tissdb");
        child.wait().expect("reap tissdb");
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn terminate_status(&mut self) -> ExitStatus {
        self.terminate_within(EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "tissdb did not exit within {EXIT_TIMEOUT:?} of SIGTERM; stderr:\n{}",
                self.stderr()
            )
        })
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit; returns its exit
    /// status, or None if it was still running (it is then killed with SIGKILL).
    pub fn terminate_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take().expect("server is not running");
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {} failed", child.id());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and asserts a clean exit with code 0.
    #[track_caller]
    pub fn terminate(&mut self) {
        let status = self.terminate_status();
        assert_eq!(
            status.code(),
            Some(0),
            "tissdb exited with {status} after SIGTERM; stderr:\n{}",
            self.stderr()
        );
    }

    /// Starts a new process on the same data directory (after `kill_9` or `terminate`).
    pub fn restart(&mut self) {
        self.launch();
    }

    /// True while the child process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    // --------------------------------------------------------------------------------
    // HTTP helpers
    // --------------------------------------------------------------------------------

    pub fn get(&self, path: &str) -> Resp {
        send(self.client.get(self.url(path)))
    }

    pub fn get_accept(&self, path: &str, accept: &str) -> Resp {
        send(self.client.get(self.url(path)).header("Accept", accept))
    }

    pub fn delete(&self, path: &str) -> Resp {
        send(self.client.delete(self.url(path)))
    }

    /// PUT without a body (creates a collection).
    pub fn put_empty(&self, path: &str) -> Resp {
        send(self.client.put(self.url(path)))
    }

    pub fn post_json(&self, path: &str, body: &Json) -> Resp {
        send(
            self.client
                .post(self.url(path))
                .header("Content-Type", "application/json")
                .body(body.to_string()),
        )
    }

    pub fn put_json(&self, path: &str, body: &Json) -> Resp {
        send(
            self.client
                .put(self.url(path))
                .header("Content-Type", "application/json")
                .body(body.to_string()),
        )
    }

    /// POST of raw bytes with the given Content-Type.
    /// Begins a REST transaction (`POST /_transaction/begin`, no body) and returns its id.
    pub fn begin_transaction(&self) -> String {
        let r = self.post_raw("/_transaction/begin", "application/json", "");
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["transaction_id"]
            .as_str()
            .expect("transaction_id")
            .to_string()
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Resp {
        send(
            self.client
                .post(self.url(path))
                .header("Content-Type", content_type)
                .body(body.into()),
        )
    }

    /// PUT of raw bytes with the given Content-Type.
    pub fn put_raw(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Resp {
        send(
            self.client
                .put(self.url(path))
                .header("Content-Type", content_type)
                .body(body.into()),
        )
    }

    /// Creates a collection, asserting 201.
    #[track_caller]
    pub fn create_collection(&self, name: &str) {
        let r = self.put_empty(&format!("/{name}"));
        assert_eq!(r.status, 201, "PUT /{name}: {}", r.text);
    }

    /// Inserts a document, asserting 201; returns the stored document (with its id).
    #[track_caller]
    pub fn insert(&self, collection: &str, doc: &Json) -> Json {
        let r = self.post_json(&format!("/{collection}"), doc);
        assert_eq!(r.status, 201, "POST /{collection} {doc}: {}", r.text);
        r.json()
    }

    /// The document `id` (200), or None (404 with a JSON error).
    #[track_caller]
    pub fn get_doc(&self, collection: &str, id: &str) -> Option<Json> {
        let r = self.get(&format!("/{collection}/{}", path_segment(id)));
        match r.status {
            200 => Some(r.json()),
            404 => {
                r.assert_error_body("02000");
                None
            }
            s => panic!("GET /{collection}/{id}: unexpected status {s}: {}", r.text),
        }
    }

    /// Every document of a collection, following `next_after` page by page.
    #[track_caller]
    pub fn list_all(&self, collection: &str) -> Vec<Json> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/{collection}?limit=1000");
            if let Some(a) = &after {
                path.push_str("&after=");
                path.push_str(&query_value(a));
            }
            let r = self.get(&path);
            assert_eq!(r.status, 200, "GET {path}: {}", r.text);
            let page = r.json();
            let docs = page["documents"]
                .as_array()
                .unwrap_or_else(|| panic!("no documents array in {}", truncate(&r.text)));
            out.extend(docs.iter().cloned());
            match &page["next_after"] {
                Json::Null => break,
                Json::String(s) => after = Some(s.clone()),
                other => panic!("next_after must be a string or null, got {other}"),
            }
        }
        out
    }

    /// Names of all collections, from `GET /_collections`.
    #[track_caller]
    pub fn collections(&self) -> Vec<String> {
        let r = self.get("/_collections");
        assert_eq!(r.status, 200, "GET /_collections: {}", r.text);
        r.json()["collections"]
            .as_array()
            .expect("collections array")
            .iter()
            .map(|c| c.as_str().expect("collection name").to_string())
            .collect()
    }

    /// Runs `POST /<collection>/_compact`, asserting 200.
    #[track_caller]
    pub fn compact(&self, collection: &str) -> Json {
        let r = send(
            self.client
                .post(self.url(&format!("/{collection}/_compact"))),
        );
        assert_eq!(r.status, 200, "POST /{collection}/_compact: {}", r.text);
        let body = r.json();
        assert_eq!(body["compacted"], Json::Bool(true), "{body}");
        body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// True if process `pid` has a handler for SIGTERM (Linux: bit 15 of `SigCgt` in
/// `/proc/<pid>/status`). Where that file cannot be read, assumes it has.
pub fn catches_sigterm(pid: u32) -> bool {
    const SIGTERM: u32 = 15;
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_none_or(|mask| mask & (1 << (SIGTERM - 1)) != 0)
}

/// Percent-encodes a path segment (everything but unreserved ASCII).
pub fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn query_value(s: &str) -> String {
    path_segment(s)
}

/// `doc` with `"id": id` as its first field.
pub fn with_id(id: &str, doc: &Json) -> Json {
    let mut out = serde_json::Map::new();
    out.insert("id".to_string(), Json::String(id.to_string()));
    for (k, v) in doc.as_object().expect("a JSON object") {
        if k != "id" {
            out.insert(k.clone(), v.clone());
        }
    }
    Json::Object(out)
}

/// True if `s` is a lowercase or uppercase UUID v4 in its 8-4-4-4-12 form.
pub fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
}

/// A random-enough 128-bit hex string (no rand crate: std's randomly keyed hasher).
pub fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Reads a file, or returns nothing if it vanished meanwhile.
pub fn read_file(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_end(&mut bytes);
    }
    bytes
}

/// The rows of a simple query (every statement of it), as text, in the order they came.
pub async fn simple_rows(c: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let messages = c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// Sends `csv` as the data of `sql` (a `COPY ... FROM STDIN`); the row count it answers.
pub async fn copy_csv(c: &tokio_postgres::Client, sql: &str, csv: String) -> u64 {
    use futures::SinkExt;
    let sink = c.copy_in::<_, bytes::Bytes>(sql).await.expect("copy in");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(csv)).await.expect("copy data");
    sink.finish().await.expect("copy finish")
}
