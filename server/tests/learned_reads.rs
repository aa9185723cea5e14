//! Prepared reads that their plan does not show to be point lookups (a join by index, a
//! range of an index) run directly on the connection's thread once their shape has
//! proved quick (`tissdb_wire::quick_reads`), end to end through the `postgres` driver
//! against the real binary. Their answers are the ones the test computes from the rows
//! it wrote, run after run with changing parameters: a transaction's own writes are
//! seen and gone after ROLLBACK, another connection's commits are seen, a learned shape
//! asked for thousands of rows gives them all in order, and a portal read a few rows at
//! a time gives them all once.

mod common;

use std::collections::BTreeMap;

use common::{Server, pg_client};

const CUSTOMERS: i32 = 500;
const ORDERS: i32 = 5000;

/// The order `id`'s customer and total.
fn order(id: i32) -> (i32, i64) {
    ((id * 37) % CUSTOMERS + 1, i64::from((id * 13) % 101))
}

/// Per customer: the number and the sum of the totals of its orders.
fn expected() -> BTreeMap<i32, (i64, i64)> {
    let mut by_customer: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for id in 1..=ORDERS {
        let (customer, total) = order(id);
        let e = by_customer.entry(customer).or_default();
        e.0 += 1;
        e.1 += total;
    }
    by_customer
}

fn load(c: &mut postgres::Client) {
    c.batch_execute(
        "CREATE TABLE customers (id integer PRIMARY KEY, region text); \
         CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer, total bigint); \
         CREATE INDEX orders_customer ON orders (customer_id)",
    )
    .unwrap();
    let customers: Vec<String> = (1..=CUSTOMERS)
        .map(|i| format!("({i}, 'r{}')", i % 5))
        .collect();
    c.batch_execute(&format!(
        "INSERT INTO customers VALUES {}",
        customers.join(", ")
    ))
    .unwrap();
    let orders: Vec<String> = (1..=ORDERS)
        .map(|id| {
            let (customer, total) = order(id);
            format!("({id}, {customer}, {total})")
        })
        .collect();
    c.batch_execute(&format!("INSERT INTO orders VALUES {}", orders.join(", ")))
        .unwrap();
    c.batch_execute("ANALYZE customers; ANALYZE orders")
        .unwrap();
}

#[test]
fn joins_by_index_keep_their_answers_run_after_run() {
    let server = Server::start();
    let mut c = pg_client(&server);
    load(&mut c);
    let join = c
        .prepare(
            "SELECT count(*), coalesce(sum(o.total), 0)::bigint FROM customers c \
             JOIN orders o ON o.customer_id = c.id WHERE c.id = $1",
        )
        .unwrap();
    let answer = |c: &mut postgres::Client, customer: i32| -> (i64, i64) {
        let row = c.query_one(&join, &[&customer]).unwrap();
        (row.get(0), row.get(1))
    };
    let expected = expected();
    for i in 0..300 {
        let customer = (i * 7919) % (CUSTOMERS + 20) + 1;
        let want = expected.get(&customer).copied().unwrap_or((0, 0));
        assert_eq!(
            answer(&mut c, customer),
            want,
            "customer {customer}, run {i}"
        );
    }

    // A transaction's own write is seen, and gone after ROLLBACK.
    let before = expected[&42];
    c.batch_execute("BEGIN; INSERT INTO orders VALUES (100001, 42, 1000)")
        .unwrap();
    assert_eq!(answer(&mut c, 42), (before.0 + 1, before.1 + 1000));
    c.batch_execute("ROLLBACK").unwrap();
    assert_eq!(answer(&mut c, 42), before);

    // Another connection's commits are seen by the next run: an order more, one of
    // the customer's gone.
    let (gone, (_, gone_total)) = (1..=ORDERS)
        .map(|id| (id, order(id)))
        .find(|(_, (customer, _))| *customer == 42)
        .unwrap();
    let mut other = pg_client(&server);
    other
        .batch_execute(&format!(
            "INSERT INTO orders VALUES (100002, 42, 5); DELETE FROM orders WHERE id = {gone}"
        ))
        .unwrap();
    assert_eq!(answer(&mut c, 42), (before.0, before.1 + 5 - gone_total));
}

#[test]
fn a_learned_range_read_gives_every_row_it_is_asked_for() {
    let server = Server::start();
    let mut c = pg_client(&server);
    load(&mut c);
    let range = c
        .prepare("SELECT id FROM orders WHERE customer_id <= $1 ORDER BY id")
        .unwrap();
    let ids = |c: &mut postgres::Client, upto: i32| -> Vec<i32> {
        c.query(&range, &[&upto])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let want = |upto: i32| -> Vec<i32> { (1..=ORDERS).filter(|&id| order(id).0 <= upto).collect() };
    // Quick runs teach the connection the shape.
    for upto in (0..40).map(|i| i % 3) {
        assert_eq!(ids(&mut c, upto), want(upto), "customers up to {upto}");
    }
    // Then every order, in order, from a run on the connection's thread.
    assert_eq!(ids(&mut c, CUSTOMERS), want(CUSTOMERS));
    assert_eq!(ids(&mut c, 1), want(1));
    assert_eq!(ids(&mut c, CUSTOMERS), want(CUSTOMERS));

    // A portal of the learned statement, read 700 rows at a time.
    let mut tx = c.transaction().unwrap();
    let portal = tx.bind(&range, &[&CUSTOMERS]).unwrap();
    let mut got = Vec::new();
    loop {
        let batch = tx.query_portal(&portal, 700).unwrap();
        assert!(batch.len() <= 700);
        if batch.is_empty() {
            break;
        }
        got.extend(batch.iter().map(|r| r.get::<_, i32>(0)));
    }
    tx.commit().unwrap();
    assert_eq!(got, want(CUSTOMERS));
}
