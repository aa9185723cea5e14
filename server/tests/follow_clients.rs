//! Connections follow their clients (`tissdb_net::follow`), end to end through
//! tokio-postgres against the real binary: two client threads, each pinned to a CPU of
//! its own and driving four connections at once (as pgbench's threads do), start with
//! their connections split over the server's connection threads, which the test pins
//! one to each of those CPUs. Each client thread's connections gather on the connection
//! thread of its CPU (the CPU each client socket's answers come from says which thread
//! answered), the connections keep their sessions through the moves (statements
//! prepared before, an open transaction committed after), every answer is its query's,
//! and `GET /` counts the moves. The same for REST: keep-alive GETs of documents by id,
//! four connections a client thread, each answer its request's. Connection threads are
//! pinned by default (one CPU each, their blocking threads free, all free when told not
//! to be); a lone connection follows its client to a thread that never served anyone,
//! and a thread runs loose while its lone connection only writes, pinned again once it
//! reads.

mod common;

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::Server;
use rustix::thread::{CpuSet, Pid, sched_getaffinity, sched_setaffinity};

/// Connections of each client thread.
const PER_CLIENT: usize = 4;

/// How long the connections have to gather.
const GATHER_WITHIN: Duration = Duration::from_secs(60);

/// Rows to read.
const ROWS: i64 = 100;

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    let set = sched_getaffinity(None).expect("sched_getaffinity");
    (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect()
}

/// Pins thread `tid` (None: the calling thread) to `cpu`.
fn pin(tid: Option<Pid>, cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(tid, &set).expect("sched_setaffinity");
}

/// The server's connection threads (`tissdb-conn-N`), by N, once they have named
/// themselves (at most a few seconds after the server says it is ready).
fn connection_threads(pid: u32) -> BTreeMap<usize, Pid> {
    let started = Instant::now();
    loop {
        let threads = named_connection_threads(pid);
        if !threads.is_empty() || started.elapsed() > Duration::from_secs(5) {
            return threads;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The threads of `pid` named `tissdb-conn-N`, by N.
fn named_connection_threads(pid: u32) -> BTreeMap<usize, Pid> {
    let mut threads = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let task = task.expect("task").path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        let Some(n) = comm.trim().strip_prefix("tissdb-conn-") else {
            continue;
        };
        let tid: i32 = task
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .expect("a task id");
        threads.insert(
            n.parse().expect("a thread number"),
            Pid::from_raw(tid).expect("a tid"),
        );
    }
    threads
}

/// A connection whose socket the test can ask where its answers come from.
struct Connection {
    client: tokio_postgres::Client,
    socket: std::net::TcpStream,
}

impl Connection {
    /// The CPU the last answer came from (the CPU of the connection thread that sent it).
    fn answered_from(&self) -> u32 {
        answered_from(&self.socket)
    }
}

/// The CPU the last packet `socket` received came from.
fn answered_from(socket: &std::net::TcpStream) -> u32 {
    rustix::net::sockopt::socket_incoming_cpu(socket.as_fd()).expect("SO_INCOMING_CPU")
}

/// Starts a PostgreSQL session on `socket` (already connected to the server), its
/// connection task spawned on the current runtime.
async fn start_session(server: &Server, socket: std::net::TcpStream) -> Connection {
    socket.set_nodelay(true).expect("nodelay");
    socket.set_nonblocking(true).expect("nonblocking");
    let watched = socket.try_clone().expect("clone");
    let stream = tokio::net::TcpStream::from_std(socket).expect("tokio socket");
    let mut config = tokio_postgres::Config::new();
    config.user("tester").dbname("tissdb");
    let (client, connection) = config
        .connect_raw(stream, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}; server stderr:\n{}", server.stderr()));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Connection {
        client,
        socket: watched,
    }
}

/// A runtime on the calling thread, which is pinned to `cpu` first, for a client's
/// sessions.
fn pinned_runtime(cpu: usize) -> tokio::runtime::Runtime {
    pin(None, cpu);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// What one client thread saw, round after round, until its connections gathered.
#[derive(Debug)]
struct ClientRun {
    /// The client thread's CPU.
    cpu: usize,
    started: Instant,
    /// Where its connections' answers came from after the first round.
    first: Vec<u32>,
    /// Rounds run so far.
    rounds: u64,
    /// Checks in a row (one each 16 rounds) that found every answer from `cpu`.
    gathered: u32,
}

impl ClientRun {
    fn new(cpu: usize) -> ClientRun {
        ClientRun {
            cpu,
            started: Instant::now(),
            first: Vec::new(),
            rounds: 0,
            gathered: 0,
        }
    }

    /// Whether every connection was answered from the client's CPU three checks in a
    /// row; fails the test once [`GATHER_WITHIN`] passed without, the connections
    /// answered from `from` last.
    fn done(&self, from: &[u32]) -> bool {
        assert!(
            self.gathered >= 3 || self.started.elapsed() < GATHER_WITHIN,
            "client on CPU {}: connections still answered from {from:?} after {} rounds",
            self.cpu,
            self.rounds
        );
        self.gathered >= 3
    }

    /// Counts a round whose answers came from `from`.
    fn round(&mut self, from: Vec<u32>) {
        self.rounds += 1;
        if self.first.is_empty() {
            self.first = from.clone();
        }
        if self.rounds.is_multiple_of(16) {
            self.gathered = match from.iter().all(|&c| c as usize == self.cpu) {
                true => self.gathered + 1,
                false => 0,
            };
        }
    }
}

/// Drives sessions on `sockets` from the calling thread, pinned to `cpu`, one query on
/// each at once, round after round, until all of them have been answered from `cpu`
/// three checks in a row (or [`GATHER_WITHIN`] passed). The first connection runs its
/// rounds inside one transaction, inserting a row of `client` each round, and commits
/// at the end.
fn run_client(
    server: &Server,
    client: i32,
    cpu: usize,
    sockets: Vec<std::net::TcpStream>,
) -> ClientRun {
    pinned_runtime(cpu).block_on(async move {
        let mut conns = Vec::new();
        for socket in sockets {
            conns.push(start_session(server, socket).await);
        }
        let read = futures::future::try_join_all(
            conns
                .iter()
                .map(|c| c.client.prepare("SELECT v FROM t WHERE id = $1")),
        )
        .await
        .expect("prepare");
        let insert = conns[0]
            .client
            .prepare("INSERT INTO log (id, client, n) VALUES ($1, $2, $3)")
            .await
            .expect("prepare insert");
        conns[0].client.batch_execute("BEGIN").await.expect("begin");
        let mut run = ClientRun::new(cpu);
        let answered_from = |conns: &[Connection]| {
            conns
                .iter()
                .map(Connection::answered_from)
                .collect::<Vec<_>>()
        };
        while !run.done(&answered_from(&conns)) {
            let round = i64::try_from(run.rounds).expect("rounds");
            let queries = conns
                .iter()
                .zip(&read)
                .enumerate()
                .map(|(i, (c, statement))| {
                    let insert = &insert;
                    async move {
                        if i == 0 {
                            let id = i64::from(client) * 1_000_000 + round;
                            c.client
                                .execute(insert, &[&id, &client, &round])
                                .await
                                .expect("insert");
                            return;
                        }
                        let id = (round * 7 + i as i64) % ROWS;
                        let row = c.client.query_one(statement, &[&id]).await.expect("read");
                        assert_eq!(
                            row.get::<_, String>(0),
                            format!("row {id}"),
                            "another query's answer"
                        );
                    }
                });
            futures::future::join_all(queries).await;
            run.round(answered_from(&conns));
        }
        conns[0]
            .client
            .batch_execute("COMMIT")
            .await
            .expect("commit");
        run
    })
}

/// The two CPUs of the test, with the server's two connection threads pinned one to
/// each (thread N to the CPU its number points to, as the server places a connection
/// that starts a burst from a CPU); None (the test skipped) without two of each.
fn pinned_threads(server: &Server) -> Option<(usize, usize)> {
    let cpus = allowed_cpus();
    let threads = connection_threads(server.pid());
    if cpus.len() < 2 || threads.len() != 2 {
        eprintln!("skipped: the test wants two CPUs and two connection threads");
        return None;
    }
    let (cpu_a, cpu_b) = (cpus[0], cpus[1]);
    for (n, tid) in &threads {
        pin(Some(*tid), [cpu_a, cpu_b][n % 2]);
    }
    Some((cpu_a, cpu_b))
}

/// Eight connections to `port` in one burst from `cpu` (the calling thread pinned
/// there): the server gives the first four one thread and the rest the other. Each
/// client thread gets two of each: the sockets of the first client, then the second's.
fn split_burst(port: u16, cpu: usize) -> (Vec<std::net::TcpStream>, Vec<std::net::TcpStream>) {
    pin(None, cpu);
    let (mut of_a, mut of_b) = (Vec::new(), Vec::new());
    for i in 0..2 * PER_CLIENT {
        let socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        socket.set_nodelay(true).expect("nodelay");
        match i % 4 < 2 {
            true => of_a.push(socket),
            false => of_b.push(socket),
        }
    }
    (of_a, of_b)
}

/// Asserts that some connections started on the other client's thread (the runs'
/// `first` CPUs), and that `GET /` counts at least as many moves.
fn assert_moved(server: &Server, runs: [(&ClientRun, usize); 2]) {
    let misplaced: usize = runs
        .iter()
        .map(|(run, cpu)| run.first.iter().filter(|&&c| c as usize != *cpu).count())
        .sum();
    assert!(
        misplaced > 0,
        "the connections did not start split: {:?} {:?}",
        runs[0].0,
        runs[1].0
    );
    let info = server.get("/").json();
    let moves = info["connection_threads"]["moves"].as_u64().expect("moves");
    assert!(
        moves >= misplaced as u64,
        "{misplaced} connections misplaced, {moves} moves: {info}"
    );
}

#[test]
fn a_client_threads_connections_gather_on_the_thread_running_where_it_runs() {
    let server = Server::start();
    let Some((cpu_a, cpu_b)) = pinned_threads(&server) else {
        return;
    };
    {
        let mut client = common::pg_client(&server);
        client
            .batch_execute(
                "CREATE TABLE t (id bigint PRIMARY KEY, v text); \
                 CREATE TABLE log (id bigint PRIMARY KEY, client int, n bigint)",
            )
            .expect("create");
        let rows: Vec<String> = (0..ROWS).map(|id| format!("({id}, 'row {id}')")).collect();
        client
            .batch_execute(&format!("INSERT INTO t VALUES {}", rows.join(", ")))
            .expect("load");
    }
    let (of_a, of_b) = split_burst(server.pg_port(), cpu_a);
    let (a, b) = std::thread::scope(|scope| {
        let server = &server;
        let a = scope.spawn(move || run_client(server, 1, cpu_a, of_a));
        let b = scope.spawn(move || run_client(server, 2, cpu_b, of_b));
        (a.join().expect("client a"), b.join().expect("client b"))
    });
    assert_moved(&server, [(&a, cpu_a), (&b, cpu_b)]);
    // Each client's transaction lived through its connection's moves.
    let mut client = common::pg_client(&server);
    for (id, run) in [(1, &a), (2, &b)] {
        let row = client
            .query_one("SELECT count(*), max(n) FROM log WHERE client = $1", &[&id])
            .expect("count");
        let rounds = i64::try_from(run.rounds).expect("rounds");
        assert_eq!(
            (row.get::<_, i64>(0), row.get::<_, i64>(1)),
            (rounds, rounds - 1)
        );
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` from `socket`: its status and body.
fn read_response(socket: &mut std::net::TcpStream) -> (u16, String) {
    use std::io::Read;
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        socket.read_exact(&mut byte).expect("response head");
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes).expect("utf-8 head");
    let status = head[9..12].parse().expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    let mut body = vec![0u8; length];
    socket.read_exact(&mut body).expect("body");
    (status, String::from_utf8(body).expect("utf-8 body"))
}

/// REST's counterpart of [`run_client`]: keep-alive GETs of documents by id on
/// `sockets`, from the calling thread pinned to `cpu`, a request on each at once, until
/// all of them are answered from `cpu` three checks in a row.
fn run_rest_client(cpu: usize, mut sockets: Vec<std::net::TcpStream>) -> ClientRun {
    use std::io::Write;
    pin(None, cpu);
    let mut run = ClientRun::new(cpu);
    let answered_from =
        |sockets: &[std::net::TcpStream]| sockets.iter().map(answered_from).collect::<Vec<u32>>();
    while !run.done(&answered_from(&sockets)) {
        let ids: Vec<i64> = (0..sockets.len() as i64)
            .map(|i| (run.rounds as i64 * 7 + i) % ROWS)
            .collect();
        for (socket, id) in sockets.iter_mut().zip(&ids) {
            let request = format!("GET /docs/k{id} HTTP/1.1\r\nHost: test\r\n\r\n");
            socket.write_all(request.as_bytes()).expect("request");
        }
        for (socket, id) in sockets.iter_mut().zip(&ids) {
            let (status, body) = read_response(socket);
            assert_eq!(status, 200, "{body}");
            let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(
                doc["n"],
                serde_json::json!(id),
                "another request's answer: {body}"
            );
        }
        run.round(answered_from(&sockets));
    }
    run
}

#[test]
fn rest_connections_gather_on_the_thread_running_where_their_client_runs() {
    let server = Server::start();
    let Some((cpu_a, cpu_b)) = pinned_threads(&server) else {
        return;
    };
    server.create_collection("docs");
    for n in 0..ROWS {
        let r = server.put_json(&format!("/docs/k{n}"), &serde_json::json!({ "n": n }));
        assert!(r.status == 200 || r.status == 201, "PUT: {}", r.text);
    }
    let port: u16 = server
        .base_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("the HTTP port");
    // Where the server placed each connection (one GET on each says), then each client
    // thread gets half of each thread's: some start on the other client's thread,
    // however the server placed them.
    pin(None, cpu_a);
    let mut placed: Vec<(u32, std::net::TcpStream)> = (0..2 * PER_CLIENT)
        .map(|n| {
            let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            socket.set_nodelay(true).expect("nodelay");
            let request = format!("GET /docs/k{n} HTTP/1.1\r\nHost: test\r\n\r\n");
            std::io::Write::write_all(&mut socket, request.as_bytes()).expect("request");
            assert_eq!(read_response(&mut socket).0, 200);
            (answered_from(&socket), socket)
        })
        .collect();
    placed.sort_by_key(|(cpu, _)| *cpu);
    let (mut of_a, mut of_b) = (Vec::new(), Vec::new());
    for (i, (_, socket)) in placed.into_iter().enumerate() {
        match i % 2 == 0 {
            true => of_a.push(socket),
            false => of_b.push(socket),
        }
    }
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(move || run_rest_client(cpu_a, of_a));
        let b = scope.spawn(move || run_rest_client(cpu_b, of_b));
        (a.join().expect("client a"), b.join().expect("client b"))
    });
    assert_moved(&server, [(&a, cpu_a), (&b, cpu_b)]);
}

/// The CPUs thread `tid` of process `pid` may run on (`Cpus_allowed_list`).
fn cpus_allowed(pid: u32, tid: Pid) -> String {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/task/{}/status", tid.as_raw_nonzero()))
            .expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|l| l.trim().to_owned())
        .expect("Cpus_allowed_list")
}

#[test]
fn connection_threads_take_one_cpu_each_by_default_and_their_blocking_threads_all() {
    let cpus = allowed_cpus();
    let server = Server::start();
    let threads = connection_threads(server.pid());
    assert!(!threads.is_empty(), "no connection thread");
    for (n, tid) in &threads {
        assert_eq!(
            cpus_allowed(server.pid(), *tid),
            cpus[n % cpus.len()].to_string(),
            "connection thread {n}"
        );
    }
    // Statements that run on blocking threads, which may run anywhere (they start from
    // a pinned thread and would keep its CPU).
    let mut client = common::pg_client(&server);
    client
        .batch_execute("CREATE TABLE big (id bigint PRIMARY KEY, v text)")
        .expect("create");
    let row = client
        .query_one(
            "INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 20000) g RETURNING 1",
            &[],
        )
        .map(|_| ())
        .err();
    let _ = row;
    let count = client
        .query_one("SELECT count(*) FROM big WHERE v LIKE '%7%'", &[])
        .expect("count");
    assert!(count.get::<_, i64>(0) > 0);
    let everywhere = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .expect("status")
        .lines()
        .find_map(|l| {
            l.strip_prefix("Cpus_allowed_list:")
                .map(|l| l.trim().to_owned())
        })
        .expect("Cpus_allowed_list");
    let mut blocking = 0;
    for task in std::fs::read_dir(format!("/proc/{}/task", server.pid())).expect("tasks") {
        let task = task.expect("task").path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.trim() != "tissdb-blocking" {
            continue;
        }
        blocking += 1;
        let tid: i32 = task
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .expect("tid");
        let tid = Pid::from_raw(tid).expect("a tid");
        assert_eq!(
            cpus_allowed(server.pid(), tid),
            everywhere,
            "a blocking thread"
        );
    }
    assert!(blocking > 0, "no blocking thread ran");
}

/// The CPU thread `tid` of `pid` may run on, if it is pinned to one.
fn pinned_cpu(pid: u32, tid: Pid) -> Option<usize> {
    cpus_allowed(pid, tid).parse().ok()
}

#[test]
fn unpinned_connection_threads_run_anywhere() {
    let server = Server::start_with_env(&[("TISSDB_PIN_CONNECTION_THREADS", "false")]);
    let everywhere = cpus_allowed(
        server.pid(),
        Pid::from_raw(server.pid() as i32).expect("pid"),
    );
    let threads = connection_threads(server.pid());
    assert!(!threads.is_empty(), "no connection thread");
    for (n, tid) in &threads {
        assert_eq!(cpus_allowed(server.pid(), *tid), everywhere, "thread {n}");
    }
}

/// Runs `f` with a session on a new connection, from the calling thread pinned to
/// `cpu`; the connection's socket says where its answers come from.
fn with_session<T>(server: &Server, cpu: usize, f: impl AsyncFnOnce(&Connection) -> T) -> T {
    pinned_runtime(cpu).block_on(async move {
        let socket =
            std::net::TcpStream::connect(("127.0.0.1", server.pg_port())).expect("connect");
        let conn = start_session(server, socket).await;
        f(&conn).await
    })
}

#[test]
fn a_lone_connection_moves_to_a_pinned_thread_that_never_served_anyone() {
    // A pinned thread notes its CPU when it starts, not only when it first wakes up:
    // else a thread that never served a connection is nowhere, and a client that runs
    // on its CPU draws its connection nowhere (one lone client in three, 13k reads a
    // second instead of 60k on 2 cores).
    let server = Server::start();
    let cpus: BTreeMap<usize, usize> = connection_threads(server.pid())
        .iter()
        .filter_map(|(n, tid)| Some((*n, pinned_cpu(server.pid(), *tid)?)))
        .collect();
    if cpus.len() != 2 || cpus[&0] == cpus[&1] {
        eprintln!("skipped: the test wants two connection threads pinned to two CPUs");
        return;
    }
    let (cpu_a, cpu_b) = (cpus[&0], cpus[&1]);
    let rest = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                with_session(&server, cpu_a, async |conn| {
                    let first = conn
                        .client
                        .query_one("SELECT 1", &[])
                        .await
                        .expect("select");
                    assert_eq!(first.get::<_, i32>(0), 1);
                    let started_on = conn.answered_from() as usize;
                    // The client thread goes to the other CPU and stays there.
                    let to = if started_on == cpu_a { cpu_b } else { cpu_a };
                    pin(None, to);
                    let statement = conn
                        .client
                        .prepare("SELECT $1::int8 + 1")
                        .await
                        .expect("prepare");
                    let started = Instant::now();
                    let mut n: i64 = 0;
                    loop {
                        let row = conn
                            .client
                            .query_one(&statement, &[&n])
                            .await
                            .expect("read");
                        assert_eq!(row.get::<_, i64>(0), n + 1, "another query's answer");
                        n += 1;
                        if conn.answered_from() as usize == to {
                            return (started_on, to, n);
                        }
                        assert!(
                            started.elapsed() < GATHER_WITHIN,
                            "the connection stayed on CPU {started_on} after {n} queries \
                             from CPU {to}"
                        );
                    }
                })
            })
            .join()
            .expect("client thread")
    });
    let (from, to, queries) = rest;
    assert_ne!(from, to);
    let info = server.get("/").json();
    let moves = info["connection_threads"]["moves"].as_u64().expect("moves");
    assert!(
        moves >= 1,
        "answered from CPU {to} after {queries} queries, yet no move"
    );
}

#[test]
fn a_pinned_thread_runs_loose_while_its_lone_connection_only_writes() {
    // A lone writer waits for the disk on its connection thread: while it only writes,
    // the disk's completion wakes it where the kernel likes (the CPU that takes the
    // disk's interrupts), and the thread is pinned again once its connection reads.
    let server = Server::start();
    let pid = server.pid();
    let threads = connection_threads(pid);
    let pinned: Vec<Option<usize>> = threads.values().map(|t| pinned_cpu(pid, *t)).collect();
    if allowed_cpus().len() < 2 || pinned.iter().any(Option::is_none) {
        eprintln!("skipped: the test wants connection threads pinned on two CPUs or more");
        return;
    }
    let loose = || -> Vec<usize> {
        threads
            .iter()
            .filter(|(_, tid)| pinned_cpu(pid, **tid).is_none())
            .map(|(n, _)| *n)
            .collect()
    };
    let cpu = allowed_cpus()[0];
    with_session(&server, cpu, async |conn| {
        conn.client
            .batch_execute("CREATE TABLE w (id int8 PRIMARY KEY, v text)")
            .await
            .expect("create");
        let insert = conn
            .client
            .prepare("INSERT INTO w VALUES ($1, 'v')")
            .await
            .expect("prepare");
        for id in 0..20_i64 {
            conn.client.execute(&insert, &[&id]).await.expect("insert");
        }
        let while_writing = loose();
        assert_eq!(
            while_writing.len(),
            1,
            "threads loose after lone inserts: {while_writing:?}"
        );
        let read = conn
            .client
            .prepare("SELECT v FROM w WHERE id = $1")
            .await
            .expect("prepare");
        let read_one = async |id: i64| {
            let row = conn.client.query_one(&read, &[&id]).await.expect("read");
            assert_eq!(row.get::<_, String>(0), "v", "row {id}");
        };
        for id in 0..40_i64 {
            read_one(id % 20).await;
        }
        assert_eq!(
            loose(),
            Vec::<usize>::new(),
            "threads loose after reads only"
        );
        for (n, tid) in &threads {
            assert_eq!(pinned_cpu(pid, *tid), pinned[*n], "thread {n} pinned again");
        }
        // A client that mixes reads and writes keeps its thread pinned: loose, its reads
        // after each commit would cross cores.
        for id in 20..60_i64 {
            conn.client.execute(&insert, &[&id]).await.expect("insert");
            read_one(id - 20).await;
            assert_eq!(
                loose(),
                Vec::<usize>::new(),
                "threads loose while reads and writes mix"
            );
        }
        let count = conn
            .client
            .query_one("SELECT count(*) FROM w", &[])
            .await
            .expect("count");
        assert_eq!(count.get::<_, i64>(0), 60);
        for id in 60..80_i64 {
            conn.client.execute(&insert, &[&id]).await.expect("insert");
        }
        assert_eq!(loose().len(), 1, "threads loose after lone inserts again");
    });
    // The connection ended: its thread serves no lone writer any more.
    let started = Instant::now();
    while !loose().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "threads still loose after their connection ended: {:?}",
            loose()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
