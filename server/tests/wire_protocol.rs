//! The PostgreSQL wire front-end against real clients: tokio-postgres (extended protocol,
//! binary results and parameters), psql (simple protocol), and a raw socket client for
//! the exact messages (ReadyForQuery status, error fields, empty queries, skipping to
//! Sync after an error).
//!
//! Each test starts its own `tissdb serve` on free loopback ports with a temporary data
//! directory. Tests marked `#[ignore = "needs the SQL engine"]` run statements the
//! engine does not execute yet; run them with `-- --ignored`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// A statement that fails however far the engine has come: 0A000 while SQL is being
/// built, 42P01 once it is.
const FAILING_SQL: &str = "SELECT * FROM no_such_table_for_wire_tests";
const FAILING_CODES: [&str; 2] = ["0A000", "42P01"];

// ------------------------------------------------------------------------------------
// Server harness
// ------------------------------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A `tissdb serve` child process; killed on drop.
struct PgServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl PgServer {
    fn start() -> PgServer {
        let dir = tempfile::Builder::new()
            .prefix("tissdb-wire-")
            .tempdir()
            .expect("temp dir");
        let mut last = String::new();
        for _ in 0..3 {
            match PgServer::launch(&dir) {
                Ok((child, port)) => {
                    return PgServer {
                        child: Some(child),
                        port,
                        dir,
                    };
                }
                Err(e) if e.contains("cannot listen") => last = e,
                Err(e) => panic!("tissdb did not start: {e}"),
            }
        }
        panic!("tissdb did not start: {last}");
    }

    fn stderr_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("stderr.log")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(PgServer::stderr_path(&self.dir)).unwrap_or_default()
    }

    fn launch(dir: &tempfile::TempDir) -> Result<(Child, u16), String> {
        let port = free_port();
        let stderr = std::fs::File::create(PgServer::stderr_path(dir)).expect("stderr log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tissdb"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--pg-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{}", free_port()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        for (name, _) in std::env::vars() {
            if name.starts_with("TISSDB_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("TISSDB_LOG", "info,tissdb_wire=debug");
        let mut child = cmd.spawn().expect("spawn tissdb");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("ready") => return Ok((child, port)),
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.wait();
                    let log =
                        std::fs::read_to_string(PgServer::stderr_path(dir)).unwrap_or_default();
                    return Err(format!("exited before ready: {log}"));
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("no ready line within 30 s".into());
            }
        }
    }

    fn conn_str(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=wire_tester dbname=any_name application_name=wire-tests connect_timeout=10",
            self.port
        )
    }

    /// SIGTERM, then the exit status (panics after 20 s).
    fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tissdb did not exit within 20 s of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn connect(server: &PgServer) -> Client {
    let (client, connection) = tokio_postgres::connect(&server.conn_str(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}; server stderr:\n{}", server.stderr()));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| panic!("not a server error: {e:?}"))
}

fn assert_failing_code(e: &tokio_postgres::Error) -> String {
    let code = sqlstate(e);
    assert!(
        FAILING_CODES.contains(&code.as_str()),
        "unexpected SQLSTATE {code}: {e:?}"
    );
    code
}

// ------------------------------------------------------------------------------------
// Raw protocol client
// ------------------------------------------------------------------------------------

/// A backend message: type byte and body.
#[derive(Debug)]
struct Msg {
    tag: u8,
    body: Vec<u8>,
}

impl Msg {
    /// Error or notice fields by their one-byte code.
    fn fields(&self) -> HashMap<u8, String> {
        self.body
            .split(|b| *b == 0)
            .filter(|f| !f.is_empty())
            .map(|f| (f[0], String::from_utf8_lossy(&f[1..]).into_owned()))
            .collect()
    }

    /// A CommandComplete's tag.
    fn text(&self) -> String {
        String::from_utf8_lossy(self.body.strip_suffix(&[0]).unwrap_or(&self.body)).into_owned()
    }
}

struct Raw {
    stream: TcpStream,
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn parse_msg(name: &str, sql: &str, oids: &[u32]) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, name);
    cstr(&mut b, sql);
    b.extend_from_slice(&(oids.len() as i16).to_be_bytes());
    for oid in oids {
        b.extend_from_slice(&oid.to_be_bytes());
    }
    frame(b'P', &b)
}

fn bind_msg(
    portal: &str,
    statement: &str,
    formats: &[i16],
    params: &[Option<&[u8]>],
    results: &[i16],
) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, portal);
    cstr(&mut b, statement);
    b.extend_from_slice(&(formats.len() as i16).to_be_bytes());
    for f in formats {
        b.extend_from_slice(&f.to_be_bytes());
    }
    b.extend_from_slice(&(params.len() as i16).to_be_bytes());
    for p in params {
        match p {
            Some(bytes) => {
                b.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                b.extend_from_slice(bytes);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    b.extend_from_slice(&(results.len() as i16).to_be_bytes());
    for f in results {
        b.extend_from_slice(&f.to_be_bytes());
    }
    frame(b'B', &b)
}

fn describe_msg(kind: u8, name: &str) -> Vec<u8> {
    let mut b = vec![kind];
    cstr(&mut b, name);
    frame(b'D', &b)
}

fn execute_msg(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, portal);
    b.extend_from_slice(&max_rows.to_be_bytes());
    frame(b'E', &b)
}

fn sync_msg() -> Vec<u8> {
    frame(b'S', &[])
}

/// The message types in order, e.g. "1 2 n I Z".
fn kinds(msgs: &[Msg]) -> String {
    msgs.iter()
        .map(|m| (m.tag as char).to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The status byte of the last ReadyForQuery.
fn ready_status(msgs: &[Msg]) -> char {
    let last = msgs.last().expect("messages");
    assert_eq!(last.tag, b'Z', "{}", kinds(msgs));
    last.body[0] as char
}

fn first(msgs: &[Msg], tag: u8) -> &Msg {
    msgs.iter()
        .find(|m| m.tag == tag)
        .unwrap_or_else(|| panic!("no {:?} in {}", tag as char, kinds(msgs)))
}

impl Raw {
    fn open(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Raw { stream }
    }

    /// Starts up as user `raw`; returns the connection and what the server sent up to
    /// its first ReadyForQuery.
    fn connect(port: u16) -> (Raw, Vec<Msg>) {
        let mut raw = Raw::open(port);
        let startup = raw.startup();
        (raw, startup)
    }

    fn startup(&mut self) -> Vec<Msg> {
        let mut body = 196_608i32.to_be_bytes().to_vec();
        for (k, v) in [
            ("user", "raw"),
            ("database", "whatever"),
            ("application_name", "raw-client"),
        ] {
            cstr(&mut body, k);
            cstr(&mut body, v);
        }
        body.push(0);
        let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        self.write(&packet);
        self.until_ready()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    fn read_msg(&mut self) -> Msg {
        let mut head = [0u8; 5];
        self.stream
            .read_exact(&mut head)
            .expect("read message header");
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        self.stream
            .read_exact(&mut body)
            .expect("read message body");
        Msg { tag: head[0], body }
    }

    fn until_ready(&mut self) -> Vec<Msg> {
        let mut msgs = Vec::new();
        loop {
            let m = self.read_msg();
            let done = m.tag == b'Z';
            msgs.push(m);
            if done {
                return msgs;
            }
        }
    }

    fn query(&mut self, sql: &str) -> Vec<Msg> {
        let mut b = Vec::new();
        cstr(&mut b, sql);
        self.write(&frame(b'Q', &b));
        self.until_ready()
    }

    /// True once the server has closed the connection.
    fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0))
    }
}

// ------------------------------------------------------------------------------------
// Tests that pass before the SQL engine runs statements
// ------------------------------------------------------------------------------------

#[tokio::test]
async fn startup_reports_the_parameters_drivers_read() {
    let server = PgServer::start();
    let (client, connection) = tokio_postgres::connect(&server.conn_str(), NoTls)
        .await
        .expect("connect");
    for (name, value) in [
        ("server_version", "16.6"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("TimeZone", "UTC"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("application_name", "wire-tests"),
        ("session_authorization", "wire_tester"),
    ] {
        assert_eq!(connection.parameter(name), Some(value), "parameter {name}");
    }
    tokio::spawn(async move {
        let _ = connection.await;
    });
    assert!(!client.is_closed());
}

#[test]
fn ssl_is_refused_and_plain_startup_follows() {
    let server = PgServer::start();
    let mut raw = Raw::open(server.port);
    let mut ssl_request = 8i32.to_be_bytes().to_vec();
    ssl_request.extend_from_slice(&80_877_103i32.to_be_bytes());
    raw.write(&ssl_request);
    let mut answer = [0u8; 1];
    raw.stream.read_exact(&mut answer).expect("SSL answer");
    assert_eq!(answer[0], b'N');
    let startup = raw.startup();
    // AuthenticationOk, parameters, BackendKeyData, ReadyForQuery(Idle).
    assert_eq!(startup[0].tag, b'R');
    assert_eq!(startup[0].body, 0i32.to_be_bytes());
    assert!(startup.iter().any(|m| m.tag == b'K'), "{}", kinds(&startup));
    let params: HashMap<String, String> = startup
        .iter()
        .filter(|m| m.tag == b'S')
        .map(|m| {
            let mut parts = m.body.split(|b| *b == 0);
            let k = String::from_utf8_lossy(parts.next().unwrap()).into_owned();
            let v = String::from_utf8_lossy(parts.next().unwrap()).into_owned();
            (k, v)
        })
        .collect();
    assert_eq!(
        params.get("server_version").map(String::as_str),
        Some("16.6")
    );
    assert_eq!(
        params.get("application_name").map(String::as_str),
        Some("raw-client")
    );
    assert_eq!(ready_status(&startup), 'I');
}

#[tokio::test]
async fn engine_errors_keep_their_sqlstate_and_the_connection() {
    let server = PgServer::start();
    let client = connect(&server).await;
    // Simple protocol.
    let e = client.simple_query(FAILING_SQL).await.unwrap_err();
    let code = assert_failing_code(&e);
    // Extended protocol: the same statement fails at Parse with the same code.
    let e = client.query(FAILING_SQL, &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), code);
    let e = client.prepare(FAILING_SQL).await.unwrap_err();
    assert_eq!(sqlstate(&e), code);
    // Still usable: each statement gets its own answer.
    for _ in 0..3 {
        let e = client.simple_query(FAILING_SQL).await.unwrap_err();
        assert_eq!(sqlstate(&e), code);
    }
    assert!(!client.is_closed());
    let e = client.batch_execute(FAILING_SQL).await.unwrap_err();
    assert_eq!(sqlstate(&e), code);
}

#[test]
fn error_responses_carry_severity_code_and_message() {
    let server = PgServer::start();
    let (mut raw, _) = Raw::connect(server.port);
    let msgs = raw.query(FAILING_SQL);
    assert_eq!(kinds(&msgs), "E Z");
    let fields = msgs[0].fields();
    assert_eq!(fields.get(&b'S').map(String::as_str), Some("ERROR"));
    assert_eq!(fields.get(&b'V').map(String::as_str), Some("ERROR"));
    assert!(
        FAILING_CODES.contains(&fields[&b'C'].as_str()),
        "{fields:?}"
    );
    assert!(!fields[&b'M'].is_empty());
    assert_eq!(ready_status(&msgs), 'I');
    // The connection goes on.
    assert_eq!(kinds(&raw.query(FAILING_SQL)), "E Z");
}

#[test]
fn empty_queries_answer_empty_query_response() {
    let server = PgServer::start();
    let (mut raw, _) = Raw::connect(server.port);
    for sql in ["", "   ", ";", " ;; \n"] {
        let msgs = raw.query(sql);
        assert_eq!(kinds(&msgs), "I Z", "{sql:?}");
        assert_eq!(ready_status(&msgs), 'I');
    }
    // Extended protocol: an empty statement binds, describes as NoData and executes as
    // an empty query.
    let mut batch = parse_msg("", "", &[]);
    batch.extend(bind_msg("", "", &[], &[], &[]));
    batch.extend(describe_msg(b'P', ""));
    batch.extend(execute_msg("", 0));
    batch.extend(sync_msg());
    raw.write(&batch);
    let msgs = raw.until_ready();
    assert_eq!(kinds(&msgs), "1 2 n I Z");
}

/// The replies to Parse, Bind, Describe and Execute wait in the write buffer until Sync
/// or Flush, and then leave together, as PostgreSQL sends them (one write per
/// round trip instead of one per message).
#[test]
fn extended_replies_wait_for_sync_or_flush() {
    let server = PgServer::start();
    let (mut raw, _) = Raw::connect(server.port);
    let nothing_yet = |raw: &mut Raw| {
        raw.stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        let got = raw.stream.read(&mut byte);
        raw.stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        assert!(
            matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut),
            "a reply was sent before Sync or Flush: {got:?}"
        );
    };
    for (describe, replies) in [(b'S', "1 2 t T D C Z"), (b'P', "1 2 T D C Z")] {
        let mut batch = parse_msg("", "SELECT 1 AS one", &[]);
        batch.extend(bind_msg("", "", &[], &[], &[]));
        batch.extend(describe_msg(describe, ""));
        batch.extend(execute_msg("", 0));
        raw.write(&batch);
        nothing_yet(&mut raw);
        raw.write(&sync_msg());
        let msgs = raw.until_ready();
        assert_eq!(kinds(&msgs), replies, "describe {}", describe as char);
    }
    // Flush sends what waits, without ending the round trip.
    let mut batch = parse_msg("", "SELECT 2 AS two", &[]);
    batch.extend(bind_msg("", "", &[], &[], &[]));
    batch.extend(describe_msg(b'P', ""));
    raw.write(&batch);
    nothing_yet(&mut raw);
    raw.write(&frame(b'H', &[]));
    let msgs: Vec<Msg> = (0..3).map(|_| raw.read_msg()).collect();
    assert_eq!(kinds(&msgs), "1 2 T");
    raw.write(&execute_msg("", 0));
    raw.write(&sync_msg());
    assert_eq!(kinds(&raw.until_ready()), "D C Z");
}

#[tokio::test]
async fn empty_queries_through_tokio_postgres() {
    let server = PgServer::start();
    let client = connect(&server).await;
    let msgs = client.simple_query("").await.expect("empty simple query");
    assert!(
        msgs.iter()
            .all(|m| matches!(m, SimpleQueryMessage::CommandComplete(0))),
        "{msgs:?}"
    );
    client.batch_execute(" ; ").await.expect("blank batch");
    assert_eq!(
        client.execute("", &[]).await.expect("empty extended query"),
        0
    );
}

#[test]
fn extended_errors_skip_to_sync() {
    let server = PgServer::start();
    let (mut raw, _) = Raw::connect(server.port);
    // Parse fails; Bind, Describe and Execute are skipped; Sync answers ReadyForQuery.
    let mut batch = parse_msg("", FAILING_SQL, &[]);
    batch.extend(bind_msg("", "", &[], &[], &[]));
    batch.extend(describe_msg(b'P', ""));
    batch.extend(execute_msg("", 0));
    batch.extend(sync_msg());
    raw.write(&batch);
    let msgs = raw.until_ready();
    assert_eq!(kinds(&msgs), "E Z");
    assert!(FAILING_CODES.contains(&msgs[0].fields()[&b'C'].as_str()));
    assert_eq!(ready_status(&msgs), 'I');
    // Binding a statement that does not exist is an error too, and the connection goes on.
    let mut batch = bind_msg("", "no_such_statement", &[], &[], &[]);
    batch.extend(execute_msg("", 0));
    batch.extend(sync_msg());
    raw.write(&batch);
    let msgs = raw.until_ready();
    assert_eq!(kinds(&msgs), "E Z");
    assert_eq!(msgs[0].fields()[&b'C'], "26000");
    assert_eq!(kinds(&raw.query("")), "I Z");
}

#[tokio::test]
async fn cancel_requests_are_accepted_and_leave_the_connection_working() {
    let server = PgServer::start();
    let client = connect(&server).await;
    let token = client.cancel_token();
    // tokio-postgres returns once the request is written, not when the server has
    // acted on it; give the server a moment before the next statement.
    let settle = || tokio::time::sleep(Duration::from_millis(300));
    // Nothing is running: the request is accepted and has no effect, now or on the
    // next statement.
    token.cancel_query(NoTls).await.expect("cancel request");
    settle().await;
    let e = client.simple_query(FAILING_SQL).await.unwrap_err();
    assert_failing_code(&e);
    // While statements run (as fast as they are today), cancels race with them; each
    // statement still gets exactly one answer: its own result or 57014. (As in
    // PostgreSQL, a cancel that arrives late can hit the next statement.)
    for _ in 0..10 {
        let (result, cancel) =
            tokio::join!(client.simple_query(FAILING_SQL), token.cancel_query(NoTls));
        cancel.expect("cancel request");
        let code = sqlstate(&result.unwrap_err());
        assert!(
            code == "57014" || FAILING_CODES.contains(&code.as_str()),
            "{code}"
        );
    }
    settle().await;
    let e = client.simple_query(FAILING_SQL).await.unwrap_err();
    assert_failing_code(&e);
    // A cancel request with a wrong key is ignored; its own socket is closed.
    let mut raw = Raw::open(server.port);
    let mut request = 16i32.to_be_bytes().to_vec();
    request.extend_from_slice(&80_877_102i32.to_be_bytes());
    request.extend_from_slice(&1i32.to_be_bytes());
    request.extend_from_slice(&2i32.to_be_bytes());
    raw.write(&request);
    assert!(raw.is_closed());
    assert_failing_code(&client.simple_query(FAILING_SQL).await.unwrap_err());
}

fn psql(server: &PgServer, commands: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("psql");
    cmd.args([
        "-X",
        "-h",
        "127.0.0.1",
        "-U",
        "x",
        "-d",
        "anything",
        "-v",
        "VERBOSITY=verbose",
    ])
    .arg("-p")
    .arg(server.port.to_string())
    .env("PGCONNECT_TIMEOUT", "10")
    .env_remove("PGPASSWORD")
    .env_remove("PGSERVICE")
    .stdin(Stdio::null());
    for c in commands {
        cmd.arg("-c").arg(c);
    }
    cmd.output().expect("run psql (is it installed?)")
}

#[tokio::test]
async fn psql_connects_and_prints_engine_errors_with_their_code() {
    let server = PgServer::start();
    let client = connect(&server).await;
    let code = sqlstate(&client.simple_query(FAILING_SQL).await.unwrap_err());
    let out = psql(&server, &[FAILING_SQL]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("ERROR:  {code}: ")),
        "stderr: {stderr}"
    );
    // psql negotiated (and was refused) SSL first: the default sslmode is prefer.
    assert!(!stderr.contains("SSL"), "stderr: {stderr}");
}

#[tokio::test]
async fn sigterm_closes_open_connections_and_exits_cleanly() {
    let mut server = PgServer::start();
    let client = connect(&server).await;
    let (_raw, _) = Raw::connect(server.port);
    assert_failing_code(&client.simple_query(FAILING_SQL).await.unwrap_err());
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (status, server.stderr())
    })
    .await
    .expect("join");
    assert_eq!(status.0.code(), Some(0), "stderr:\n{}", status.1);
    assert!(
        client.simple_query("").await.is_err(),
        "the connection is closed"
    );
}

// ------------------------------------------------------------------------------------
// Tests that need the SQL engine
// ------------------------------------------------------------------------------------

/// A numeric as PostgreSQL's binary words (ndigits, weight, sign, dscale, digits), so
/// the test checks the wire bytes without a decimal library.
#[derive(Debug, PartialEq)]
struct RawNumeric(Vec<u16>);

impl<'a> FromSql<'a> for RawNumeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawNumeric(
            raw.chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
                .collect(),
        ))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

impl ToSql for RawNumeric {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        for w in &self.0 {
            out.extend_from_slice(&w.to_be_bytes());
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

const CREATE_TYPES: &str = "CREATE TABLE wire_types (
    id integer PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real,
    f8 double precision, n numeric(10,2), t text, vc varchar(10), d date, ts timestamp,
    tstz timestamptz, by bytea, u uuid, jb jsonb, j json)";

const INSERT_TYPES: &str = "INSERT INTO wire_types VALUES (1, true, -2, 40000, 9000000000,
    1.5, 0.1, 12.50, 'héllo', 'abc', '2023-10-26', '2023-10-26 10:00:00.5',
    '2023-10-26 12:00:00+02', '\\x00ff', 'a1b2c3d4-e5f6-4a3b-8c2d-1e9f8a7b6c5d',
    '{\"a\": [1, true]}', '{\"b\": null}'), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)";

fn uuid_1() -> uuid::Uuid {
    uuid::Uuid::parse_str("a1b2c3d4-e5f6-4a3b-8c2d-1e9f8a7b6c5d").unwrap()
}

fn naive(s: &str) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

/// Checks a row of `wire_types` (or of a SELECT with the same columns) read in binary.
fn check_binary_row(row: &tokio_postgres::Row) {
    let types: Vec<Type> = row.columns().iter().map(|c| c.type_().clone()).collect();
    let at = |name: &str| {
        row.columns()
            .iter()
            .position(|c| c.name() == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let expect = [
        ("b", Type::BOOL),
        ("i2", Type::INT2),
        ("i4", Type::INT4),
        ("i8", Type::INT8),
        ("f4", Type::FLOAT4),
        ("f8", Type::FLOAT8),
        ("n", Type::NUMERIC),
        ("t", Type::TEXT),
        ("vc", Type::VARCHAR),
        ("d", Type::DATE),
        ("ts", Type::TIMESTAMP),
        ("tstz", Type::TIMESTAMPTZ),
        ("by", Type::BYTEA),
        ("u", Type::UUID),
        ("jb", Type::JSONB),
        ("j", Type::JSON),
    ];
    for (name, ty) in &expect {
        assert_eq!(&types[at(name)], ty, "type of {name}");
    }
    assert!(row.get::<_, bool>("b"));
    assert_eq!(row.get::<_, i16>("i2"), -2);
    assert_eq!(row.get::<_, i32>("i4"), 40000);
    assert_eq!(row.get::<_, i64>("i8"), 9_000_000_000);
    assert_eq!(row.get::<_, f32>("f4"), 1.5);
    assert_eq!(row.get::<_, f64>("f8"), 0.1);
    assert_eq!(
        row.get::<_, RawNumeric>("n"),
        RawNumeric(vec![2, 0, 0, 2, 12, 5000])
    );
    assert_eq!(row.get::<_, String>("t"), "héllo");
    assert_eq!(row.get::<_, String>("vc"), "abc");
    assert_eq!(
        row.get::<_, chrono::NaiveDate>("d"),
        chrono::NaiveDate::from_ymd_opt(2023, 10, 26).unwrap()
    );
    assert_eq!(
        row.get::<_, chrono::NaiveDateTime>("ts"),
        naive("2023-10-26 10:00:00.5")
    );
    assert_eq!(
        row.get::<_, chrono::DateTime<chrono::Utc>>("tstz"),
        naive("2023-10-26 10:00:00").and_utc()
    );
    assert_eq!(row.get::<_, Vec<u8>>("by"), vec![0, 255]);
    assert_eq!(row.get::<_, uuid::Uuid>("u"), uuid_1());
    assert_eq!(
        row.get::<_, serde_json::Value>("jb"),
        serde_json::json!({"a": [1, true]})
    );
    assert_eq!(
        row.get::<_, serde_json::Value>("j"),
        serde_json::json!({"b": null})
    );
}

#[tokio::test]
async fn every_type_in_binary_and_text() {
    let server = PgServer::start();
    let client = connect(&server).await;
    client.batch_execute(CREATE_TYPES).await.expect("create");
    assert_eq!(client.execute(INSERT_TYPES, &[]).await.expect("insert"), 2);

    // Binary: tokio-postgres asks for every result column in binary.
    let rows = client
        .query("SELECT * FROM wire_types ORDER BY id", &[])
        .await
        .expect("select");
    assert_eq!(rows.len(), 2);
    check_binary_row(&rows[0]);
    for i in 1..rows[1].len() {
        assert!(
            rows[1].get::<_, Option<RawBytes>>(i).is_none(),
            "column {i} is NULL"
        );
    }

    // Text: the simple protocol.
    let msgs = client
        .simple_query("SELECT * FROM wire_types ORDER BY id")
        .await
        .expect("simple select");
    let rows: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(rows.len(), 2);
    let r = rows[0];
    for (name, text) in [
        ("id", "1"),
        ("b", "t"),
        ("i2", "-2"),
        ("i4", "40000"),
        ("i8", "9000000000"),
        ("f4", "1.5"),
        ("f8", "0.1"),
        ("n", "12.50"),
        ("t", "héllo"),
        ("vc", "abc"),
        ("d", "2023-10-26"),
        ("ts", "2023-10-26 10:00:00.5"),
        ("tstz", "2023-10-26 10:00:00+00"),
        ("by", "\\x00ff"),
        ("u", "a1b2c3d4-e5f6-4a3b-8c2d-1e9f8a7b6c5d"),
        ("jb", "{\"a\": [1, true]}"),
        ("j", "{\"b\": null}"),
    ] {
        assert_eq!(r.get(name), Some(text), "column {name}");
    }
    for i in 1..rows[1].len() {
        assert_eq!(rows[1].get(i), None, "column {i} is NULL");
    }
    assert!(
        matches!(msgs.last(), Some(SimpleQueryMessage::CommandComplete(2))),
        "{msgs:?}"
    );
}

/// Any value's raw bytes, to check NULLs whatever the type.
struct RawBytes;

impl<'a> FromSql<'a> for RawBytes {
    fn from_sql(_: &Type, _: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawBytes)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[tokio::test]
async fn parameters_of_every_type_in_binary() {
    let server = PgServer::start();
    let client = connect(&server).await;
    let d = chrono::NaiveDate::from_ymd_opt(2023, 10, 26).unwrap();
    let ts = naive("2023-10-26 10:00:00.5");
    let tstz = naive("2023-10-26 10:00:00").and_utc();
    let n = RawNumeric(vec![2, 0, 0, 2, 12, 5000]);
    let jb = serde_json::json!({"a": [1, true]});
    let j = serde_json::json!({"b": null});
    let by = vec![0u8, 255];
    // tokio-postgres sends every parameter in binary, typed as the server described.
    let row = client
        .query_one(
            "SELECT $1::boolean AS b, $2::smallint AS i2, $3::integer AS i4, $4::bigint AS i8, $5::real AS f4,
                    $6::double precision AS f8, $7::numeric AS n, $8::text AS t, $9::varchar AS vc, $10::date AS d,
                    $11::timestamp AS ts, $12::timestamptz AS tstz, $13::bytea AS by, $14::uuid AS u,
                    $15::jsonb AS jb, $16::json AS j",
            &[
                &true, &-2i16, &40000i32, &9_000_000_000i64, &1.5f32, &0.1f64, &n, &"héllo", &"abc", &d, &ts, &tstz,
                &by, &uuid_1(), &jb, &j,
            ],
        )
        .await
        .expect("select parameters");
    check_binary_row(&row);
    // NULL parameters.
    let row = client
        .query_one("SELECT $1::integer AS x", &[&None::<i32>])
        .await
        .expect("null parameter");
    assert_eq!(row.get::<_, Option<i32>>("x"), None);
}

/// Parameters of an INSERT take the types of their columns, so a driver can bind a
/// JSON value to a jsonb column.
#[tokio::test]
async fn insert_parameters_take_their_column_types() {
    let server = PgServer::start();
    let client = connect(&server).await;
    client.batch_execute(CREATE_TYPES).await.expect("create");
    let d = chrono::NaiveDate::from_ymd_opt(2023, 10, 26).unwrap();
    let ts = naive("2023-10-26 10:00:00.5");
    let tstz = naive("2023-10-26 10:00:00").and_utc();
    let n = RawNumeric(vec![2, 0, 0, 2, 12, 5000]);
    let jb = serde_json::json!({"a": [1, true]});
    let j = serde_json::json!({"b": null});
    let by = vec![0u8, 255];
    let inserted = client
        .execute(
            "INSERT INTO wire_types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            &[
                &1i32, &true, &-2i16, &40000i32, &9_000_000_000i64, &1.5f32, &0.1f64, &n, &"héllo", &"abc", &d, &ts,
                &tstz, &by, &uuid_1(), &jb, &j,
            ],
        )
        .await
        .expect("insert with parameters");
    assert_eq!(inserted, 1);
    let row = client
        .query_one("SELECT * FROM wire_types WHERE id = $1", &[&1i32])
        .await
        .expect("select by parameter");
    check_binary_row(&row);
}

#[tokio::test]
async fn command_tags_and_row_counts() {
    let server = PgServer::start();
    let client = connect(&server).await;
    client
        .batch_execute("CREATE TABLE tags (id integer PRIMARY KEY, name text)")
        .await
        .expect("create");
    assert_eq!(
        client
            .execute("INSERT INTO tags VALUES (1, 'a'), (2, 'b'), (3, 'c')", &[])
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        client
            .execute("UPDATE tags SET name = 'x' WHERE id < $1", &[&3i32])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        client
            .execute("DELETE FROM tags WHERE id = 1", &[])
            .await
            .unwrap(),
        1
    );
    // The exact tag text.
    let (mut raw, _) = Raw::connect(server.port);
    let msgs = raw.query("INSERT INTO tags VALUES (10, 'p'), (11, 'q'); UPDATE tags SET name = 'y'; DELETE FROM tags WHERE id > 9; SELECT * FROM tags");
    let tags: Vec<String> = msgs
        .iter()
        .filter(|m| m.tag == b'C')
        .map(Msg::text)
        .collect();
    assert_eq!(tags, ["INSERT 0 2", "UPDATE 4", "DELETE 2", "SELECT 2"]);
    let msgs = raw.query("CREATE TABLE tags2 (id integer)");
    assert_eq!(first(&msgs, b'C').text(), "CREATE TABLE");
}

#[tokio::test]
async fn portal_with_a_row_limit() {
    let server = PgServer::start();
    let mut client = connect(&server).await;
    client
        .batch_execute("CREATE TABLE five (id integer PRIMARY KEY); INSERT INTO five VALUES (1), (2), (3), (4), (5)")
        .await
        .expect("setup");
    let tx = client.transaction().await.expect("begin");
    let stmt = tx
        .prepare("SELECT id FROM five ORDER BY id")
        .await
        .expect("prepare");
    let portal = tx.bind(&stmt, &[]).await.expect("bind");
    let mut seen = Vec::new();
    for expected in [2, 2, 1, 0] {
        let rows = tx.query_portal(&portal, 2).await.expect("fetch");
        assert_eq!(rows.len(), expected);
        seen.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    tx.commit().await.expect("commit");

    // On the wire: PortalSuspended until the last Execute, which completes.
    let (mut raw, _) = Raw::connect(server.port);
    assert_eq!(ready_status(&raw.query("BEGIN")), 'T');
    let mut batch = parse_msg("s", "SELECT id FROM five ORDER BY id", &[]);
    batch.extend(bind_msg("p", "s", &[], &[], &[]));
    batch.extend(execute_msg("p", 3));
    batch.extend(execute_msg("p", 3));
    batch.extend(sync_msg());
    raw.write(&batch);
    let msgs = raw.until_ready();
    assert_eq!(kinds(&msgs), "1 2 D D D s D D C Z");
    assert_eq!(ready_status(&msgs), 'T');
}

/// A parameter the client declared (pgjdbc declares its strings varchar) and the
/// statement casts is converted by the cast, as PostgreSQL does.
#[tokio::test]
async fn declared_parameters_are_cast() {
    let server = PgServer::start();
    let client = connect(&server).await;
    let stmt = client
        .prepare_typed(
            "SELECT $1::int + 1 AS n, $2::jsonb -> 'a' AS a, $3::jsonb AS s, $4::text AS t",
            &[Type::TEXT, Type::VARCHAR, Type::TEXT, Type::INT4],
        )
        .await
        .expect("prepare typed");
    assert_eq!(
        stmt.params(),
        &[Type::TEXT, Type::VARCHAR, Type::TEXT, Type::INT4]
    );
    let row = client
        .query_one(&stmt, &[&"5", &r#"{"a": 7}"#, &r#""1""#, &42i32])
        .await
        .expect("query");
    assert_eq!(row.get::<_, i32>("n"), 6);
    assert_eq!(row.get::<_, serde_json::Value>("a"), serde_json::json!(7));
    assert_eq!(row.get::<_, serde_json::Value>("s"), serde_json::json!("1"));
    assert_eq!(row.get::<_, String>("t"), "42");
    let e = client
        .query_one(&stmt, &[&"five", &"{}", &"1", &1i32])
        .await
        .expect_err("five is no integer");
    assert_eq!(sqlstate(&e), "22P02", "{e}");
}

#[tokio::test]
async fn describe_without_executing() {
    let server = PgServer::start();
    let client = connect(&server).await;
    client
        .batch_execute("CREATE TABLE described (id integer PRIMARY KEY, name varchar(20), price numeric(10,2))")
        .await
        .expect("create");
    let stmt = client
        .prepare("SELECT id, name, price FROM described WHERE id > $1 AND name = $2")
        .await
        .expect("prepare");
    assert_eq!(stmt.params(), &[Type::INT4, Type::VARCHAR]);
    let cols: Vec<(&str, Type)> = stmt
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_().clone()))
        .collect();
    assert_eq!(
        cols,
        [
            ("id", Type::INT4),
            ("name", Type::VARCHAR),
            ("price", Type::NUMERIC)
        ]
    );
    // Declared parameter types win.
    let stmt = client
        .prepare_typed("SELECT id FROM described WHERE id = $1", &[Type::INT8])
        .await
        .expect("prepare typed");
    assert_eq!(stmt.params(), &[Type::INT8]);
    // Nothing ran: the table is still empty and a statement without rows has none.
    let stmt = client
        .prepare("INSERT INTO described VALUES ($1, $2, $3)")
        .await
        .expect("prepare insert");
    assert!(stmt.columns().is_empty());
    assert_eq!(stmt.params().len(), 3);
    let rows = client.query("SELECT * FROM described", &[]).await.unwrap();
    assert!(rows.is_empty());
    // Table OID and column number in the row description.
    let (mut raw, _) = Raw::connect(server.port);
    let msgs = raw.query("SELECT name FROM described");
    let desc = first(&msgs, b'T');
    let body = &desc.body;
    let name_end = 2 + body[2..].iter().position(|b| *b == 0).unwrap();
    let table_oid = u32::from_be_bytes(body[name_end + 1..name_end + 5].try_into().unwrap());
    let attnum = i16::from_be_bytes(body[name_end + 5..name_end + 7].try_into().unwrap());
    let typmod = i32::from_be_bytes(body[name_end + 13..name_end + 17].try_into().unwrap());
    assert_ne!(table_oid, 0);
    assert_eq!(attnum, 2);
    assert_eq!(typmod, 24);
}

#[test]
fn ready_for_query_follows_the_transaction() {
    let server = PgServer::start();
    let (mut raw, _) = Raw::connect(server.port);
    assert_eq!(ready_status(&raw.query("BEGIN")), 'T');
    assert_eq!(ready_status(&raw.query("SELECT 1")), 'T');
    assert_eq!(ready_status(&raw.query(FAILING_SQL)), 'E');
    assert_eq!(ready_status(&raw.query("SELECT 1")), 'E');
    assert_eq!(ready_status(&raw.query("ROLLBACK")), 'I');
    // Several statements in one string: the status after the last.
    assert_eq!(ready_status(&raw.query("BEGIN; SELECT 1")), 'T');
    assert_eq!(ready_status(&raw.query("COMMIT")), 'I');
    // Extended protocol: ReadyForQuery after Sync.
    let mut batch = parse_msg("", "BEGIN", &[]);
    batch.extend(bind_msg("", "", &[], &[], &[]));
    batch.extend(execute_msg("", 0));
    batch.extend(sync_msg());
    raw.write(&batch);
    let msgs = raw.until_ready();
    assert_eq!(first(&msgs, b'C').text(), "BEGIN");
    assert_eq!(ready_status(&msgs), 'T');
    let mut batch = parse_msg("", FAILING_SQL, &[]);
    batch.extend(sync_msg());
    raw.write(&batch);
    let msgs = raw.until_ready();
    assert_eq!(kinds(&msgs), "E Z");
    assert_eq!(ready_status(&raw.query("ROLLBACK")), 'I');
}

/// In PostgreSQL any error inside a transaction block fails it, including one at Parse
/// (or at Bind, for a bad parameter). The engine marks the transaction failed only when
/// a statement fails while executing.
#[test]
fn a_parse_error_fails_the_transaction() {
    let server = PgServer::start();
    let (mut raw, _) = Raw::connect(server.port);
    assert_eq!(ready_status(&raw.query("BEGIN")), 'T');
    let mut batch = parse_msg("", FAILING_SQL, &[]);
    batch.extend(sync_msg());
    raw.write(&batch);
    assert_eq!(ready_status(&raw.until_ready()), 'E');
    assert_eq!(ready_status(&raw.query("ROLLBACK")), 'I');
}

#[test]
fn statements_without_rows_describe_as_no_data() {
    let server = PgServer::start();
    let (mut raw, _) = Raw::connect(server.port);
    raw.query("CREATE TABLE nodata (id integer PRIMARY KEY, name text)");
    let mut batch = parse_msg("ins", "INSERT INTO nodata VALUES ($1, $2)", &[]);
    batch.extend(describe_msg(b'S', "ins"));
    batch.extend(parse_msg(
        "sel",
        "SELECT name FROM nodata WHERE id = $1",
        &[],
    ));
    batch.extend(describe_msg(b'S', "sel"));
    batch.extend(bind_msg("", "ins", &[], &[Some(b"1"), Some(b"x")], &[]));
    batch.extend(describe_msg(b'P', ""));
    batch.extend(execute_msg("", 0));
    batch.extend(sync_msg());
    raw.write(&batch);
    let msgs = raw.until_ready();
    // ParseComplete, ParameterDescription, NoData; ParseComplete, ParameterDescription,
    // RowDescription; BindComplete, NoData, CommandComplete; ReadyForQuery.
    assert_eq!(kinds(&msgs), "1 t n 1 t T 2 n C Z");
    assert_eq!(msgs[8].text(), "INSERT 0 1");
}

#[tokio::test]
async fn cancel_a_slow_statement() {
    let server = PgServer::start();
    let client = connect(&server).await;
    let token = client.cancel_token();
    // About 3000 rows of string work: seconds, and cancelled after 300 ms.
    let values: Vec<String> = (0..3000).map(|i| format!("({i})")).collect();
    client
        .batch_execute(&format!(
            "CREATE TABLE slow (id integer PRIMARY KEY); INSERT INTO slow VALUES {}",
            values.join(", ")
        ))
        .await
        .expect("setup");
    let slow = client.simple_query(
        "SELECT count(*) FROM slow WHERE length(replace(repeat('ab', 100000 + id), 'a', 'cd')) > 0",
    );
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await
    };
    let (result, cancelled) = tokio::join!(slow, cancel);
    cancelled.expect("cancel request");
    let e = result.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e:?}");
    // The connection works afterwards (the next statement may wait for the cancelled
    // one to finish on its thread).
    let rows = client
        .query("SELECT 1::integer", &[])
        .await
        .expect("after cancel");
    assert_eq!(rows[0].get::<_, i32>(0), 1);
}

/// Connections run on a few connection threads, handed out in turn: a long statement
/// on one of them must not hold the others of its thread. One connection runs a
/// statement that only a cancel ends (a three-way cross join); meanwhile six more (so
/// some share its thread on any machine of up to six cores) read, write and read their
/// own writes, and all of them finish while it still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_statement_holds_no_other_connection() {
    let server = PgServer::start();
    let long = connect(&server).await;
    let token = long.cancel_token();
    let values: Vec<String> = (0..3000).map(|i| format!("({i}, {i})")).collect();
    long.batch_execute(&format!(
        "CREATE TABLE wide (id integer PRIMARY KEY, v integer); INSERT INTO wide VALUES {}",
        values.join(", ")
    ))
    .await
    .expect("setup");
    let mut others = Vec::new();
    for _ in 0..6 {
        others.push(connect(&server).await);
    }
    let running = tokio::spawn(async move {
        long.simple_query("SELECT count(*) FROM wide a, wide b, wide c")
            .await
            .map(|_| ())
    });
    // Let the cross join start.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let meanwhile = async {
        for (i, client) in others.iter().enumerate() {
            let id = 10_000 + i as i32;
            let rows = client
                .query("SELECT v FROM wide WHERE id = $1", &[&(i as i32)])
                .await
                .expect("point read");
            assert_eq!(rows[0].get::<_, i32>(0), i as i32);
            client
                .execute("INSERT INTO wide VALUES ($1, $1)", &[&id])
                .await
                .expect("insert");
            let rows = client
                .query(
                    "SELECT count(*)::integer FROM wide WHERE v >= 10000 AND id = $1",
                    &[&id],
                )
                .await
                .expect("read back");
            assert_eq!(rows[0].get::<_, i32>(0), 1);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), meanwhile)
        .await
        .expect("the other connections waited for the long statement");
    assert!(
        !running.is_finished(),
        "the cross join of 27e9 rows ended before the cancel"
    );
    // A cancel that arrives before the statement has started is lost: ask again.
    let mut running = running;
    let result = loop {
        token.cancel_query(NoTls).await.expect("cancel request");
        if let Ok(ended) = tokio::time::timeout(Duration::from_secs(2), &mut running).await {
            break ended.expect("task");
        }
    };
    let e = result.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e:?}");
}

#[tokio::test]
async fn psql_runs_a_select() {
    let server = PgServer::start();
    let out = psql(&server, &["select 1 as one", "\\set VERBOSITY verbose"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("one"), "{stdout}");
    assert!(stdout.contains("(1 row)"), "{stdout}");
}

/// Prepared INSERT, UPDATE and DELETE run again and again on their kept plans and follow
/// the catalog: a unique index made after the INSERT's plan was kept is enforced, an
/// UPDATE planned over an index still finds its rows once the index is gone, and a table
/// dropped and made again is written by its new definition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_writes_follow_catalog_changes() {
    let server = PgServer::start();
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE TABLE w (id integer PRIMARY KEY, tag text, n integer, code integer);
             CREATE INDEX w_tag ON w (tag);",
        )
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO w (id, tag, n, code) VALUES ($1, $2, $3, $4)")
        .await
        .unwrap();
    let bump = client
        .prepare("UPDATE w SET n = n + $2 WHERE tag = $1")
        .await
        .unwrap();
    let remove = client.prepare("DELETE FROM w WHERE id = $1").await.unwrap();
    let sum = |tag: &'static str| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT coalesce(sum(n), 0)::bigint FROM w WHERE tag = $1",
                    &[&tag],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0)
        }
    };
    for i in 0..40i32 {
        let tag = format!("t{}", i % 4);
        let n = client
            .execute(&insert, &[&i, &tag, &0i32, &(i * 10)])
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    for _ in 0..3 {
        assert_eq!(client.execute(&bump, &[&"t1", &1i32]).await.unwrap(), 10);
    }
    assert_eq!(sum("t1").await, 30);
    client.batch_execute("DROP INDEX w_tag").await.unwrap();
    assert_eq!(client.execute(&bump, &[&"t1", &1i32]).await.unwrap(), 10);
    assert_eq!(sum("t1").await, 40);

    client
        .batch_execute("CREATE UNIQUE INDEX w_code ON w (code)")
        .await
        .unwrap();
    let err = client
        .execute(&insert, &[&100i32, &"t9", &0i32, &50i32])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION), "{err:?}");
    assert_eq!(
        client
            .execute(&insert, &[&100i32, &"t9", &0i32, &1000i32])
            .await
            .unwrap(),
        1
    );

    for _ in 0..2 {
        assert_eq!(client.execute(&remove, &[&5i32]).await.unwrap(), 1);
        assert_eq!(client.execute(&remove, &[&5i32]).await.unwrap(), 0);
        client
            .execute(&insert, &[&5i32, &"t1", &0i32, &5i32])
            .await
            .unwrap();
    }

    client
        .batch_execute(
            "DROP TABLE w;
             CREATE TABLE w (id integer PRIMARY KEY, tag text, n integer NOT NULL, code integer);",
        )
        .await
        .unwrap();
    let err = client
        .execute(&insert, &[&1i32, &"t1", &None::<i32>, &1i32])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::NOT_NULL_VIOLATION), "{err:?}");
    client
        .execute(&insert, &[&1i32, &"t1", &7i32, &1i32])
        .await
        .unwrap();
    assert_eq!(client.execute(&bump, &[&"t1", &1i32]).await.unwrap(), 1);
    assert_eq!(sum("t1").await, 8);
}

/// A prepared SELECT runs again and again on its kept plan, and follows the catalog: a
/// plan made over an index is dropped with the index, and calls to now() are never kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_selects_follow_index_changes_and_keep_no_function_results() {
    let server = PgServer::start();
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE TABLE kept (id integer PRIMARY KEY, tag text, n integer);
             INSERT INTO kept SELECT i, 'tag' || (i % 40), i FROM generate_series(1, 400) AS s(i);
             CREATE INDEX kept_tag ON kept (tag);",
        )
        .await
        .unwrap();
    let by_tag = client
        .prepare("SELECT count(*) FROM kept WHERE tag = $1")
        .await
        .unwrap();
    let count = |rows: Vec<tokio_postgres::Row>| rows[0].get::<_, i64>(0);
    for _ in 0..3 {
        assert_eq!(count(client.query(&by_tag, &[&"tag7"]).await.unwrap()), 10);
    }
    client.batch_execute("DROP INDEX kept_tag").await.unwrap();
    client
        .batch_execute("INSERT INTO kept VALUES (1000, 'tag7', 0)")
        .await
        .unwrap();
    assert_eq!(count(client.query(&by_tag, &[&"tag7"]).await.unwrap()), 11);
    client
        .batch_execute("CREATE INDEX kept_tag2 ON kept (tag)")
        .await
        .unwrap();
    assert_eq!(count(client.query(&by_tag, &[&"tag7"]).await.unwrap()), 11);

    let clock = client.prepare("SELECT now()::text").await.unwrap();
    let first: String = client.query_one(&clock, &[]).await.unwrap().get(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second: String = client.query_one(&clock, &[]).await.unwrap().get(0);
    assert_ne!(first, second, "now() is evaluated at each execution");
}

/// A prepared SELECT's executions share what its kept plan works out once (the columns
/// its scans decode, the nested paths a projection leaves to its scan), and each
/// computes the parameter-only parts of its filter with its own parameters: every
/// execution answers as the same statement sent as text does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_selects_keep_their_scan_setup_and_take_each_executions_parameters() {
    let server = PgServer::start();
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE COLLECTION gear;
             INSERT INTO gear (id, brand, specs, n)
               SELECT 'g' || i, 'brand_' || (i % 7), ('{\"weight\": \"' || i || 'g\", \"dims\": {\"w\": ' || i || '}}')::jsonb, i
               FROM generate_series(1, 300) AS s(i);
             CREATE INDEX gear_brand ON gear (brand);
             CREATE TABLE owners (brand text PRIMARY KEY, owner text);
             INSERT INTO owners VALUES ('brand_3', 'ann'), ('brand_5', 'bob');",
        )
        .await
        .unwrap();
    let text_rows = |sql: String| {
        let client = &client;
        async move {
            client
                .simple_query(&sql)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                    }
                    _ => None,
                })
                .collect::<Vec<Vec<Option<String>>>>()
        }
    };
    let as_text = |rows: Vec<tokio_postgres::Row>| {
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect()
            })
            .collect::<Vec<Vec<Option<String>>>>()
    };
    // An indexed filter with a parameter-only part, a nested path left to the scan.
    let by_brand = client
        .prepare(
            "SELECT id::text, specs.weight::text, specs.dims.w::text FROM gear
             WHERE brand = 'brand_' || $1::text AND n > $2::int ORDER BY n LIMIT 5",
        )
        .await
        .unwrap();
    // A join: two scans in one kept plan.
    let joined = client
        .prepare(
            "SELECT g.id::text, o.owner FROM gear g JOIN owners o ON o.brand = g.brand
             WHERE g.n < $1::int ORDER BY g.n",
        )
        .await
        .unwrap();
    for round in 0..3 {
        for b in ["3", "5", "6", "9"] {
            let min = 40 * round;
            let got = as_text(client.query(&by_brand, &[&b, &min]).await.unwrap());
            let want = text_rows(format!(
                "SELECT id::text, specs.weight::text, specs.dims.w::text FROM gear
                 WHERE brand = 'brand_{b}' AND n > {min} ORDER BY n LIMIT 5"
            ))
            .await;
            assert_eq!(got, want, "brand {b}, n > {min}");
            if b != "9" {
                assert_eq!(got.len(), 5, "brand {b}, n > {min}: {got:?}");
                assert!(
                    got[0][1].as_deref().is_some_and(|w| w.ends_with('g')),
                    "{got:?}"
                );
            }
        }
        let below = 20 + 30 * round;
        let got = as_text(client.query(&joined, &[&below]).await.unwrap());
        let want = text_rows(format!(
            "SELECT g.id::text, o.owner FROM gear g JOIN owners o ON o.brand = g.brand
             WHERE g.n < {below} ORDER BY g.n"
        ))
        .await;
        assert!(!got.is_empty());
        assert_eq!(got, want, "n < {below}");
    }
    // A NULL parameter makes the parameter-only part NULL: no rows.
    let none: Option<&str> = None;
    let rows = client.query(&by_brand, &[&none, &0i32]).await.unwrap();
    assert!(rows.is_empty());
    // A parameter-only part that fails fails the execution once a row reaches it, and
    // leaves the kept plan to the next execution.
    let ratio = client
        .prepare("SELECT count(*) FROM gear WHERE n > 100 / $1::int")
        .await
        .unwrap();
    let e = client.query(&ratio, &[&0i32]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "22012", "{e:?}");
    for _ in 0..2 {
        let n: i64 = client.query_one(&ratio, &[&1i32]).await.unwrap().get(0);
        assert_eq!(n, 200);
    }
}

/// The column names of a statement's rows.
fn column_names(row: &tokio_postgres::Row) -> Vec<String> {
    row.columns().iter().map(|c| c.name().to_string()).collect()
}

/// The result columns of `sql` parsed now as a named statement, whatever was kept.
async fn fresh_columns(client: &Client, sql: &str) -> Vec<String> {
    let stmt = client.prepare(sql).await.unwrap();
    stmt.columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect()
}

/// Drivers parse the unnamed statement again for every query they run (`query_typed`
/// does, as node-postgres and pgjdbc do); the server hands out what it parsed from the
/// same text before while the catalog and settings are unchanged. Whatever it hands out
/// must be what a fresh parse gives: after the table is recreated with other columns,
/// inside a transaction that writes it, after a schemaless collection gains a field,
/// inside a transaction that adds one and after its rollback.
#[tokio::test]
async fn the_unnamed_statement_parsed_again_follows_the_catalog() {
    let server = PgServer::start();
    let client = connect(&server).await;
    client
        .batch_execute(
            "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'a'), (2, 'b')",
        )
        .await
        .unwrap();
    let by_key = "SELECT * FROM kv WHERE k = $1";
    for (k, v) in [(1, "a"), (2, "b"), (1, "a")] {
        let rows = client
            .query_typed(by_key, &[(&k, Type::INT4)])
            .await
            .unwrap();
        assert_eq!(column_names(&rows[0]), ["k", "v"]);
        assert_eq!(rows[0].get::<_, String>("v"), v);
    }
    client
        .batch_execute(
            "DROP TABLE kv; CREATE TABLE kv (k int PRIMARY KEY, w int, v text); \
             INSERT INTO kv VALUES (1, 10, 'c')",
        )
        .await
        .unwrap();
    let rows = client
        .query_typed(by_key, &[(&1i32, Type::INT4)])
        .await
        .unwrap();
    assert_eq!(column_names(&rows[0]), ["k", "w", "v"]);
    assert_eq!(rows[0].get::<_, i32>("w"), 10);
    assert_eq!(rows[0].get::<_, String>("v"), "c");

    // Inside a transaction that writes a typed table: its own writes are seen, and gone
    // after its rollback.
    client
        .batch_execute("BEGIN; INSERT INTO kv VALUES (5, 50, 'e')")
        .await
        .unwrap();
    let rows = client
        .query_typed(by_key, &[(&5i32, Type::INT4)])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>("v"), "e");
    client.batch_execute("ROLLBACK").await.unwrap();
    let rows = client
        .query_typed(by_key, &[(&5i32, Type::INT4)])
        .await
        .unwrap();
    assert!(rows.is_empty());

    // A schemaless collection: a document with a new field adds a column.
    client
        .batch_execute("CREATE COLLECTION docs; INSERT INTO docs (id, a) VALUES ('x', 1)")
        .await
        .unwrap();
    let by_id = "SELECT * FROM docs WHERE id = $1";
    let rows = client
        .query_typed(by_id, &[(&"x", Type::TEXT)])
        .await
        .unwrap();
    assert_eq!(column_names(&rows[0]), ["id", "a"]);
    client
        .batch_execute("INSERT INTO docs (id, a, b) VALUES ('y', 2, 'new')")
        .await
        .unwrap();
    let rows = client
        .query_typed(by_id, &[(&"y", Type::TEXT)])
        .await
        .unwrap();
    assert_eq!(column_names(&rows[0]), ["id", "a", "b"]);
    assert_eq!(column_names(&rows[0]), fresh_columns(&client, by_id).await);
    assert_eq!(rows[0].get::<_, String>("b"), "new");

    // Inside a transaction that writes a new field, and after it rolls back.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute("INSERT INTO docs (id, c) VALUES ('z', true)")
        .await
        .unwrap();
    let rows = client
        .query_typed(by_id, &[(&"z", Type::TEXT)])
        .await
        .unwrap();
    let in_transaction = fresh_columns(&client, by_id).await;
    assert_eq!(column_names(&rows[0]), in_transaction);
    client.batch_execute("ROLLBACK").await.unwrap();
    let rows = client
        .query_typed(by_id, &[(&"x", Type::TEXT)])
        .await
        .unwrap();
    assert_eq!(column_names(&rows[0]), fresh_columns(&client, by_id).await);
    assert_eq!(rows[0].get::<_, i64>("a"), 1);
}

/// Many connections reading and writing at once, their answers held back and sent
/// together by their connection threads (wire's `batching`): each connection gets its
/// own answers, in order, with pipelined requests too, and the writes all land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connections_get_their_own_answers() {
    let server = PgServer::start();
    let setup = connect(&server).await;
    let values: Vec<String> = (0..500).map(|i| format!("({i}, 'v{i}')")).collect();
    setup
        .batch_execute(&format!(
            "CREATE TABLE answers (id integer PRIMARY KEY, v text); INSERT INTO answers VALUES {}",
            values.join(", ")
        ))
        .await
        .expect("setup");
    let mut tasks = Vec::new();
    for c in 0..8i32 {
        let client = connect(&server).await;
        tasks.push(tokio::spawn(async move {
            let read = client
                .prepare("SELECT v, $1::integer FROM answers WHERE id = $2")
                .await
                .expect("prepare");
            for round in 0..150i32 {
                let id = (c * 61 + round * 7) % 500;
                let rows = client.query(&read, &[&round, &id]).await.expect("read");
                assert_eq!(rows.len(), 1, "connection {c} round {round}");
                assert_eq!(rows[0].get::<_, String>(0), format!("v{id}"));
                assert_eq!(rows[0].get::<_, i32>(1), round, "an answer of its own");
                if round % 10 == 0 {
                    let new_id = 1000 + c * 1000 + round;
                    client
                        .execute("INSERT INTO answers VALUES ($1, 'new')", &[&new_id])
                        .await
                        .expect("insert");
                }
                if round % 25 == 0 {
                    // Pipelined: several exchanges in flight on one connection.
                    let ids: Vec<i32> = (0..5).map(|k| (id + k) % 500).collect();
                    let params: Vec<[&(dyn ToSql + Sync); 2]> =
                        ids.iter().map(|i| [&round as _, i as _]).collect();
                    let answers = futures::future::try_join_all(
                        params.iter().map(|p| client.query_one(&read, p)),
                    )
                    .await
                    .expect("pipelined reads");
                    for (i, row) in ids.iter().zip(&answers) {
                        assert_eq!(row.get::<_, String>(0), format!("v{i}"));
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("a connection's checks");
    }
    let count: i64 = setup
        .query_one("SELECT count(*) FROM answers WHERE v = 'new'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 8 * 15);
}
