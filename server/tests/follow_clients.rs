//! Connections follow their clients (`tissdb_net::follow`), end to end through
//! tokio-postgres against the real binary: two client threads, each pinned to a CPU of
//! its own and driving four connections at once (as pgbench's threads do), start with
//! their connections split over the server's connection threads, which the test pins
//! one to each of those CPUs. Each client thread's connections gather on the connection
//! thread of its CPU (the CPU each client socket's answers come from says which thread
//! answered), the connections keep their sessions through the moves (statements
//! prepared before, an open transaction committed after), every answer is its query's,
//! and `GET /` counts the moves.

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

/// The server's connection threads (`tissdb-conn-N`), by N.
fn connection_threads(pid: u32) -> BTreeMap<usize, Pid> {
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
        rustix::net::sockopt::socket_incoming_cpu(self.socket.as_fd()).expect("SO_INCOMING_CPU")
    }
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

/// What one client thread saw.
#[derive(Debug)]
struct ClientRun {
    /// Where its connections' answers came from after the first round.
    first: Vec<u32>,
    /// Rounds run until every connection was answered from the client's CPU.
    rounds: u64,
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
    pin(None, cpu);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
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
        let started = Instant::now();
        let (mut first, mut gathered, mut rounds) = (Vec::new(), 0, 0u64);
        while gathered < 3 {
            assert!(
                started.elapsed() < GATHER_WITHIN,
                "client on CPU {cpu}: connections still answered from {:?} after {rounds} rounds",
                conns
                    .iter()
                    .map(Connection::answered_from)
                    .collect::<Vec<_>>()
            );
            let round = i64::try_from(rounds).expect("rounds");
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
            rounds += 1;
            let from: Vec<u32> = conns.iter().map(Connection::answered_from).collect();
            if first.is_empty() {
                first = from.clone();
            }
            if rounds % 16 == 0 {
                gathered = match from.iter().all(|&c| c as usize == cpu) {
                    true => gathered + 1,
                    false => 0,
                };
            }
        }
        conns[0]
            .client
            .batch_execute("COMMIT")
            .await
            .expect("commit");
        ClientRun { first, rounds }
    })
}

#[test]
fn a_client_threads_connections_gather_on_the_thread_running_where_it_runs() {
    let cpus = allowed_cpus();
    let server = Server::start();
    let threads = connection_threads(server.pid());
    if cpus.len() < 2 || threads.len() != 2 {
        eprintln!("skipped: the test wants two CPUs and two connection threads");
        return;
    }
    let (cpu_a, cpu_b) = (cpus[0], cpus[1]);
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
    // Connection thread N on the CPU its number points to, as the server places a
    // connection that starts a burst from a CPU.
    let on = |n: usize| [cpu_a, cpu_b][n % 2];
    for (n, tid) in &threads {
        pin(Some(*tid), on(*n));
    }
    // Eight connections in one burst from one CPU: the server gives the first four one
    // thread and the rest the other; each client thread gets two of each.
    pin(None, cpu_a);
    let sockets: Vec<std::net::TcpStream> = (0..2 * PER_CLIENT)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", server.pg_port())).expect("connect"))
        .collect();
    let mut sockets = sockets.into_iter();
    let mut of_a = Vec::new();
    let mut of_b = Vec::new();
    for i in 0..2 * PER_CLIENT {
        let socket = sockets.next().expect("a socket");
        match i % 4 < 2 {
            true => of_a.push(socket),
            false => of_b.push(socket),
        }
    }
    let (a, b) = std::thread::scope(|scope| {
        let server = &server;
        let a = scope.spawn(move || run_client(server, 1, cpu_a, of_a));
        let b = scope.spawn(move || run_client(server, 2, cpu_b, of_b));
        (a.join().expect("client a"), b.join().expect("client b"))
    });
    // Connections started on the other client's thread, and moved.
    let misplaced =
        |run: &ClientRun, cpu: usize| run.first.iter().filter(|&&c| c as usize != cpu).count();
    let misplaced = misplaced(&a, cpu_a) + misplaced(&b, cpu_b);
    assert!(
        misplaced > 0,
        "the connections did not start split: {a:?} {b:?}"
    );
    let info = server.get("/").json();
    let moves = info["connection_threads"]["moves"].as_u64().expect("moves");
    assert!(
        moves >= misplaced as u64,
        "{misplaced} connections misplaced, {moves} moves: {info}"
    );
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
