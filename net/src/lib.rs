//! Networking of the server's connection threads, shared by both front-ends (PostgreSQL
//! wire and REST): a connection's socket wrapped so that the answers a thread holds
//! back leave together, in one system call, when the thread goes to sleep
//! ([`outbox`]); and which thread serves a connection, which moves to the thread that
//! runs where its client does ([`follow`]).

pub mod follow;
pub mod outbox;
