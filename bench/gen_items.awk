# Generates the benchmark data set: by default as plain SQL, CREATE TABLE items plus
# multi-row INSERT statements; with -v format=ddl only the CREATE TABLE, and with
# -v format=csv only the rows as CSV (no header), for COPY items FROM STDIN (FORMAT csv).
# Deterministic: every column is computed from the id.
#   awk -v rows=100000 -v batch=1000 -f bench/gen_items.awk > items.sql
#   awk -v format=ddl -f bench/gen_items.awk > items-ddl.sql
#   awk -v rows=1000000 -v format=csv -f bench/gen_items.awk > items.csv
# brand: one of 50 values 'brand_00'..'brand_49'; price: 0.01..999.99 (2 decimals);
# qty: 0..999. The hash is a multiplicative (Knuth) hash mod 2^32, exact in awk's
# doubles (id * 2654435761 < 2^53 for id < 3e6).
BEGIN {
    if (rows == "") rows = 100000
    if (batch == "") batch = 1000
    if (format != "csv")
        print "CREATE TABLE items (id integer PRIMARY KEY, brand text, price float8, qty integer);"
    if (format == "ddl")
        exit
    for (id = 1; id <= rows; id++) {
        h = (id * 2654435761) % 4294967296
        brand = sprintf("brand_%02d", int(h / 7) % 50)
        price = (int(h / 1024) % 99999 + 1) / 100
        qty = int(h / 16777216) % 1000
        if (format == "csv") {
            printf "%d,%s,%.2f,%d\n", id, brand, price, qty
            continue
        }
        if ((id - 1) % batch == 0)
            printf "INSERT INTO items (id, brand, price, qty) VALUES\n"
        printf "(%d, '%s', %.2f, %d)", id, brand, price, qty
        if (id % batch == 0 || id == rows) print ";"; else print ","
    }
}
