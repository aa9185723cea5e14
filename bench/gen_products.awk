# Generates product documents like the seed's (name, brand, price, category, specs
# {weight, dimensions {...}, bluetooth_version, ...}, tags, stock, reviews) for the
# documents and rest suites of compare.sh: about 600 bytes each, or about 300 with
# -v size=small (no release date, features, rating or reviews).
#   awk -v rows=100000 -v target=tissdb -f bench/gen_products.awk > products-tissdb.sql
#   awk -v rows=100000 -v target=postgres -f bench/gen_products.awk > products-pg.sql
#   awk -v rows=100000 -v size=small -v target=ndjson -f bench/gen_products.awk > docs.ndjson
#   awk -v rows=100000 -v size=small -v target=couch -f bench/gen_products.awk > docs.bulk
# tissdb: CREATE COLLECTION products (-v collection=NAME), multi-row INSERTs naming the
#   top-level fields (objects and arrays as '...'::jsonb), then CREATE INDEX ON products
#   (brand).
# postgres: CREATE TABLE products (id text PRIMARY KEY, doc jsonb), multi-row INSERTs of
#   (id, '{...}'), then CREATE INDEX ON products ((doc->>'brand')).
# ndjson: one JSON document a line, "id" included (REST imports).
# couch: one CouchDB _bulk_docs body a line, {"docs": [...]} of -v batch documents with
#   "_id".
# Every form holds the same documents under the same text ids '1'..'N'. Deterministic:
# every field is computed from the id with a multiplicative (Knuth) hash mod 2^32, exact
# in awk's doubles. brand: 'brand_00'..'brand_49' (about 2000 documents each at 100k);
# category: one of 10; price: 0.01..999.99.
BEGIN {
    if (rows == "") rows = 100000
    if (batch == "") batch = 1000
    if (collection == "") collection = "products"
    if (target != "tissdb" && target != "postgres" && target != "ndjson" && target != "couch") {
        print "gen_products.awk: -v target=tissdb|postgres|ndjson|couch" > "/dev/stderr"
        exit 1
    }
    split("audio video wearables computing gaming camera home kitchen garden sports", CAT, " ")
    split("Wireless Headphones|4K Monitor|Smart Watch|Laptop Stand|Game Controller|Action Camera|Smart Speaker|Coffee Grinder|Garden Sensor|Fitness Band", NAME, "|")
    split("black white silver blue red green", COLOR, " ")
    split("Noise Cancellation|24-hour Battery|Water Resistant|Fast Charging|Voice Control|Touch Controls", FEAT, "|")
    split("wireless portable premium budget new bestseller eco compact", TAG, " ")
    split("Amazing sound quality!|Very comfortable.|Does what it says.|Battery could be better.|Great value for money.", COMMENT, "|")
    for (id = 1; id <= rows; id++) {
        h = (id * 2654435761) % 4294967296
        c = int(h / 3) % 10 + 1
        n = 0
        str("name", sprintf("%s %d", NAME[c], id))
        str("brand", sprintf("brand_%02d", int(h / 7) % 50))
        num("price", sprintf("%.2f", (int(h / 1024) % 99999 + 1) / 100))
        str("category", CAT[c])
        num("is_available", (h % 7 != 0) ? "true" : "false")
        if (size != "small")
            str("release_date", sprintf("20%02d-%02d-%02dT10:00:00Z", 18 + int(h / 11) % 8, int(h / 13) % 12 + 1, int(h / 17) % 28 + 1))
        specs = sprintf("{\"weight\": \"%dg\", \"dimensions\": {\"width_mm\": %d, \"height_mm\": %d, \"depth_mm\": %d}, \"bluetooth_version\": 5.%d",
            50 + int(h / 19) % 2000, 40 + int(h / 23) % 400, 20 + int(h / 29) % 300, 5 + int(h / 31) % 100, int(h / 37) % 4)
        if (size != "small")
            specs = specs sprintf(", \"battery_hours\": %d, \"color\": \"%s\", \"features\": [\"%s\", \"%s\", \"%s\"]",
                int(h / 41) % 48 + 1, COLOR[int(h / 43) % 6 + 1], FEAT[int(h / 47) % 6 + 1], FEAT[(int(h / 47) + 1 + int(h / 53) % 5) % 6 + 1], FEAT[(int(h / 47) + 3) % 6 + 1])
        obj("specs", specs "}")
        t1 = int(h / 61) % 8
        obj("tags", sprintf("[\"%s\", \"%s\", \"%s\"]", CAT[c], TAG[t1 + 1], TAG[(t1 + 1 + int(h / 67) % 7) % 8 + 1]))
        num("stock", int(h / 16777216) % 1000)
        if (size != "small") {
            num("rating", sprintf("%.1f", 1 + (int(h / 71) % 41) / 10))
            obj("reviews", sprintf("[{\"id\": \"rev_1\", \"rating\": %d, \"comment\": \"%s\"}, {\"id\": \"rev_2\", \"rating\": %d, \"comment\": \"%s\"}]",
                int(h / 73) % 5 + 1, COMMENT[int(h / 79) % 5 + 1], int(h / 83) % 5 + 1, COMMENT[int(h / 89) % 5 + 1]))
        }
        emit()
    }
    finish()
}

# One top-level field: its name, its JSON text and its SQL literal (TissDB's form).
function str(k, v) { n++; F[n] = k; J[n] = "\"" v "\""; S[n] = "'" v "'" }
function num(k, v) { n++; F[n] = k; J[n] = v; S[n] = v }
function obj(k, v) { n++; F[n] = k; J[n] = v; S[n] = "'" v "'::jsonb" }

function json(idkey,    s, i) {
    s = idkey == "" ? "{" : "{\"" idkey "\": \"" id "\", "
    for (i = 1; i <= n; i++)
        s = s (i > 1 ? ", " : "") "\"" F[i] "\": " J[i]
    return s "}"
}

function emit(    i, s) {
    if (target == "ndjson") { print json("id"); return }
    if (target == "couch") {
        printf "%s%s", ((id - 1) % batch == 0 ? "{\"docs\": [" : ", "), json("_id")
        if (id % batch == 0 || id == rows) print "]}"
        return
    }
    if ((id - 1) % batch == 0) {
        if (id == 1) {
            if (target == "tissdb") print "CREATE COLLECTION " collection ";"
            else print "CREATE TABLE " collection " (id text PRIMARY KEY, doc jsonb);"
        }
        if (target == "tissdb") {
            s = "id"
            for (i = 1; i <= n; i++) s = s ", " F[i]
            printf "INSERT INTO %s (%s) VALUES\n", collection, s
        } else {
            printf "INSERT INTO %s (id, doc) VALUES\n", collection
        }
    }
    if (target == "tissdb") {
        s = "('" id "'"
        for (i = 1; i <= n; i++) s = s ", " S[i]
        printf "%s)", s
    } else {
        printf "('%d', '%s')", id, json("")
    }
    if (id % batch == 0 || id == rows) print ";"; else print ","
}

function finish() {
    if (target == "tissdb")
        print "CREATE INDEX ON " collection " (brand);"
    else if (target == "postgres")
        print "CREATE INDEX ON " collection " ((doc->>'brand'));"
}
