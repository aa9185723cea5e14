# Generates one table of the joins suite as plain SQL: CREATE TABLE plus multi-row
# INSERT statements (the same path as gen_items.awk).
#   awk -v table=customers -v customers=100000 -f bench/gen_joins.awk > customers.sql
#   awk -v table=orders -v orders=1000000 -v customers=100000 -f bench/gen_joins.awk
#   awk -v table=edges -v edges=1000000 -v vertices=100000 -f bench/gen_joins.awk
# customers(id, region, name): region one of 10 values 'region_0'..'region_9'.
# orders(id, customer_id, total): customer_id uniform over 1..customers (no index on it;
# J2 creates one), total 0.01..999.99 (2 decimals).
# edges(id, src, dst): src and dst uniform over 1..vertices (the index on src is
# created by the benchmark before T3).
# Deterministic: a 32-bit LCG (x * 69069 + 1 mod 2^32, exact in awk's doubles), one
# fixed seed per table; the high bits pick the values.
function next_u(n) { # uniform integer in 0..n-1
    x = (x * 69069 + 1) % 4294967296
    return int(x / 4294967296 * n)
}
BEGIN {
    if (batch == "") batch = 1000
    if (customers == "") customers = 100000
    if (orders == "") orders = 1000000
    if (edges == "") edges = 1000000
    if (vertices == "") vertices = 100000
    if (table == "customers") {
        x = 1
        print "CREATE TABLE customers (id integer PRIMARY KEY, region text, name text);"
        for (id = 1; id <= customers; id++) {
            if ((id - 1) % batch == 0)
                printf "INSERT INTO customers (id, region, name) VALUES\n"
            printf "(%d, 'region_%d', 'customer_%d')", id, next_u(10), id
            if (id % batch == 0 || id == customers) print ";"; else print ","
        }
    } else if (table == "orders") {
        x = 2
        print "CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer, total float8);"
        for (id = 1; id <= orders; id++) {
            if ((id - 1) % batch == 0)
                printf "INSERT INTO orders (id, customer_id, total) VALUES\n"
            c = next_u(customers) + 1
            printf "(%d, %d, %.2f)", id, c, (next_u(99999) + 1) / 100
            if (id % batch == 0 || id == orders) print ";"; else print ","
        }
    } else if (table == "edges") {
        x = 3
        print "CREATE TABLE edges (id integer PRIMARY KEY, src integer, dst integer);"
        for (id = 1; id <= edges; id++) {
            if ((id - 1) % batch == 0)
                printf "INSERT INTO edges (id, src, dst) VALUES\n"
            s = next_u(vertices) + 1
            printf "(%d, %d, %d)", id, s, next_u(vertices) + 1
            if (id % batch == 0 || id == edges) print ";"; else print ","
        }
    } else {
        print "gen_joins.awk: -v table=customers|orders|edges" > "/dev/stderr"
        exit 1
    }
}
