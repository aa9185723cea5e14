//! Networking of the server's connection threads, shared by both front-ends (PostgreSQL
//! wire and REST): a connection's socket wrapped so that the answers a thread holds
//! back leave together, in one system call, when the thread goes to sleep
//! ([`outbox`]).

pub mod outbox;
