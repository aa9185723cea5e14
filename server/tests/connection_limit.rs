//! `max_connections`: each front-end serves at most that many connections at once. One
//! more is answered and closed (the wire: FATAL 53300 "sorry, too many clients
//! already", as PostgreSQL; REST: 503 with a JSON error, 53300), the connections already
//! open keep working, and once one closes a new one is served again. A cancel request,
//! which comes on a connection of its own, is served past the limit.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, one_shot_client, send};

const LIMIT: usize = 3;

fn start() -> Server {
    Server::start_with_env(&[("TISSDB_MAX_CONNECTIONS", &LIMIT.to_string())])
}

fn pg_config(s: &Server) -> postgres::Config {
    format!(
        "host=127.0.0.1 port={} user=limit dbname=tissdb connect_timeout=10",
        s.pg_port()
    )
    .parse()
    .unwrap()
}

/// As many wire connections as the limit allows.
fn fill(s: &Server) -> Vec<postgres::Client> {
    (0..LIMIT)
        .map(|_| {
            pg_config(s)
                .connect(postgres::NoTls)
                .expect("within the limit")
        })
        .collect()
}

/// Retries `f` until it returns Some, for up to 10 s (a closed connection is noticed by
/// the server a moment after the client closes it).
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_wire_refuses_a_connection_past_the_limit_with_53300() {
    let s = start();
    let mut open = fill(&s);
    let refused = pg_config(&s)
        .connect(postgres::NoTls)
        .err()
        .expect("one connection too many");
    let db = refused.as_db_error().unwrap_or_else(|| panic!("{refused}"));
    assert_eq!(db.code().code(), "53300", "{refused}");
    assert_eq!(db.message(), "sorry, too many clients already");
    // psql (libpq, which asks for TLS first unless told not to) reports it as it is.
    for sslmode in ["prefer", "disable"] {
        let out = std::process::Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={} user=limit dbname=tissdb sslmode={sslmode}",
                s.pg_port()
            ))
            .args(["-X", "-c", "SELECT 1"])
            .env_remove("PGSSLMODE")
            .output()
            .expect("psql runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "psql connected: {stderr}");
        assert!(
            stderr.contains("FATAL:  sorry, too many clients already"),
            "sslmode={sslmode}: {stderr}"
        );
    }
    // The open connections keep working.
    for c in &mut open {
        let row = c.query_one("SELECT 1 + 1", &[]).unwrap();
        assert_eq!(row.get::<_, i32>(0), 2);
    }
    // The REST front-end counts its own connections.
    let r = send(one_shot_client().get(s.url("/")));
    assert_eq!(r.status, 200, "{}", r.text);
    // Once one closes, a new connection is served.
    drop(open.pop());
    let mut again = eventually("a connection after one closed", || {
        pg_config(&s).connect(postgres::NoTls).ok()
    });
    assert_eq!(
        again
            .query_one("SELECT 'back'", &[])
            .unwrap()
            .get::<_, &str>(0),
        "back"
    );
}

/// A cancel request comes on a connection of its own, so with every connection in use it
/// comes past the limit: it is served (the running statement stops with 57014), as
/// PostgreSQL serves it, not refused; a new session is still refused.
#[test]
fn a_cancel_request_past_the_limit_cancels_the_statement() {
    let s = start();
    let mut open = fill(&s);
    open[0]
        .batch_execute(
            "CREATE TABLE slow (id integer PRIMARY KEY);
             INSERT INTO slow SELECT g FROM generate_series(1, 3000) g",
        )
        .unwrap();
    let token = open[1].cancel_token();
    let cancel = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        token.cancel_query(postgres::NoTls)
    });
    // Seconds of string work, cancelled after 300 ms.
    let e = open[1]
        .simple_query(
            "SELECT count(*) FROM slow WHERE length(replace(repeat('ab', 100000 + id), 'a', 'cd')) > 0",
        )
        .unwrap_err();
    cancel.join().unwrap().expect("the cancel request was sent");
    assert_eq!(e.code().map(|c| c.code()), Some("57014"), "{e}");
    let refused = pg_config(&s)
        .connect(postgres::NoTls)
        .err()
        .expect("refused");
    assert_eq!(
        refused.as_db_error().map(|d| d.code().code()),
        Some("53300"),
        "{refused}"
    );
    let row = open[1].query_one("SELECT 'after'", &[]).unwrap();
    assert_eq!(row.get::<_, &str>(0), "after");
}

/// Sends `GET /` on a new connection and returns the status line and the body, leaving
/// the connection open (keep-alive) when it was served.
fn get_on_new_connection(s: &Server) -> (TcpStream, String, String) {
    let mut socket = TcpStream::connect(("127.0.0.1", http_port(s))).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the whole body (content-length) is in.
    loop {
        let n = socket.read(&mut buf).unwrap_or(0);
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .expect("a content-length");
            if body.len() >= len {
                let status = head.lines().next().unwrap_or("").to_string();
                return (socket, status, body.to_string());
            }
        }
        assert!(n > 0, "connection closed mid-answer: {answer:?}");
    }
}

fn http_port(s: &Server) -> u16 {
    s.base_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("the HTTP port")
}

#[test]
fn rest_refuses_a_connection_past_the_limit_with_503_and_53300() {
    let s = start();
    // Connections are served until the limit (the test harness may hold one of its own).
    let mut open = Vec::new();
    let refusal = loop {
        let (socket, status, body) = get_on_new_connection(&s);
        if status.starts_with("HTTP/1.1 200") {
            open.push(socket);
            assert!(open.len() <= LIMIT, "more than {LIMIT} connections served");
            continue;
        }
        break (status, body);
    };
    assert!(refusal.0.starts_with("HTTP/1.1 503"), "{refusal:?}");
    let body: serde_json::Value = serde_json::from_str(&refusal.1).unwrap();
    assert_eq!(body["error"]["code"], "53300", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_connections is 3")),
        "{body}"
    );
    // The wire counts its own connections.
    let mut c = pg_config(&s).connect(postgres::NoTls).expect("the wire");
    assert_eq!(c.query_one("SELECT 3", &[]).unwrap().get::<_, i32>(0), 3);
    // The connections already open keep working; once one closes, a new one is served.
    let mut first = open.remove(0);
    first
        .write_all(b"GET /_collections HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    let n = first.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    drop(first);
    eventually("a connection after one closed", || {
        let (socket, status, _) = get_on_new_connection(&s);
        status.starts_with("HTTP/1.1 200").then_some(socket)
    });
}

/// `http_idle_timeout`: a REST client that starts a request and never finishes its
/// headers (or sits idle between requests) is disconnected once the timeout passes, so
/// clients holding every slot that way do not lock the others out for good.
#[test]
fn rest_closes_connections_that_do_not_finish_their_headers_in_time() {
    let s = Server::start_with_env(&[
        ("TISSDB_MAX_CONNECTIONS", &LIMIT.to_string()),
        ("TISSDB_HTTP_IDLE_TIMEOUT", "1"),
    ]);
    // Every slot taken by a request whose headers never end (sent a byte at a time at
    // first, then nothing).
    let mut slow: Vec<TcpStream> = Vec::new();
    let refused = loop {
        let (mut socket, status, body) = get_on_new_connection(&s);
        if !status.starts_with("HTTP/1.1 200") {
            break (status, body);
        }
        for b in b"GET /_collections HTTP/1.1\r\nHost: loc" {
            socket.write_all(&[*b]).unwrap();
        }
        slow.push(socket);
        assert!(slow.len() <= LIMIT, "more than {LIMIT} connections served");
    };
    assert!(refused.0.starts_with("HTTP/1.1 503"), "{refused:?}");
    // Each is closed by the server, with no answer to the unfinished request.
    let started = Instant::now();
    for socket in &mut slow {
        let mut buf = [0u8; 256];
        match socket.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("an answer to unfinished headers: {:?}", &buf[..n]),
            Err(e) => panic!("not closed within the socket's read timeout: {e}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "closed after {:?}",
        started.elapsed()
    );
    // The slots are free again, and a client that sends its request in time is served.
    eventually("a connection after the slow ones were closed", || {
        let (socket, status, _) = get_on_new_connection(&s);
        status.starts_with("HTTP/1.1 200").then_some(socket)
    });
    let r = send(one_shot_client().get(format!("{}/", s.base_url())));
    assert_eq!(r.status, 200, "{}", r.text);
}
