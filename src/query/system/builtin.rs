//! PostgreSQL's built-in objects as drivers expect to find them in the catalogs: the
//! rows of `pg_type` for every type a client may ask about (with their real OIDs), the
//! access methods, collations, and the function list `pg_proc` shows.

/// One built-in type: (oid, typname, typlen, typcategory, element oid (arrays) or 0,
/// array type oid or 0).
pub struct BuiltinType {
    pub oid: u32,
    pub name: &'static str,
    pub len: i64,
    pub category: &'static str,
    pub elem: u32,
    pub array: u32,
}

const fn t(
    oid: u32,
    name: &'static str,
    len: i64,
    category: &'static str,
    elem: u32,
    array: u32,
) -> BuiltinType {
    BuiltinType {
        oid,
        name,
        len,
        category,
        elem,
        array,
    }
}

/// Base types then array types, as PostgreSQL 15 numbers them.
pub const TYPES: &[BuiltinType] = &[
    t(16, "bool", 1, "B", 0, 1000),
    t(17, "bytea", -1, "U", 0, 1001),
    t(18, "char", 1, "Z", 0, 1002),
    t(19, "name", 64, "S", 18, 1003),
    t(20, "int8", 8, "N", 0, 1016),
    t(21, "int2", 2, "N", 0, 1005),
    t(22, "int2vector", -1, "A", 21, 1006),
    t(23, "int4", 4, "N", 0, 1007),
    t(24, "regproc", 4, "N", 0, 1008),
    t(25, "text", -1, "S", 0, 1009),
    t(26, "oid", 4, "N", 0, 1028),
    t(27, "tid", 6, "U", 0, 1010),
    t(28, "xid", 4, "U", 0, 1011),
    t(29, "cid", 4, "U", 0, 1012),
    t(30, "oidvector", -1, "A", 26, 1013),
    t(114, "json", -1, "U", 0, 199),
    t(142, "xml", -1, "U", 0, 143),
    t(600, "point", 16, "G", 701, 1017),
    t(700, "float4", 4, "N", 0, 1021),
    t(701, "float8", 8, "N", 0, 1022),
    t(705, "unknown", -2, "X", 0, 0),
    t(790, "money", 8, "N", 0, 791),
    t(829, "macaddr", 6, "U", 0, 1040),
    t(869, "inet", -1, "I", 0, 1041),
    t(650, "cidr", -1, "I", 0, 651),
    t(1033, "aclitem", 12, "U", 0, 1034),
    t(1042, "bpchar", -1, "S", 0, 1014),
    t(1043, "varchar", -1, "S", 0, 1015),
    t(1082, "date", 4, "D", 0, 1182),
    t(1083, "time", 8, "D", 0, 1183),
    t(1114, "timestamp", 8, "D", 0, 1115),
    t(1184, "timestamptz", 8, "D", 0, 1185),
    t(1186, "interval", 16, "T", 0, 1187),
    t(1266, "timetz", 12, "D", 0, 1270),
    t(1560, "bit", -1, "V", 0, 1561),
    t(1562, "varbit", -1, "V", 0, 1563),
    t(1700, "numeric", -1, "N", 0, 1231),
    t(1790, "refcursor", -1, "U", 0, 2201),
    t(2202, "regprocedure", 4, "N", 0, 2207),
    t(2205, "regclass", 4, "N", 0, 2210),
    t(2206, "regtype", 4, "N", 0, 2211),
    t(4089, "regnamespace", 4, "N", 0, 4090),
    t(2249, "record", -1, "P", 0, 2287),
    t(2275, "cstring", -2, "P", 0, 1263),
    t(2276, "any", 4, "P", 0, 0),
    t(2277, "anyarray", -1, "P", 0, 0),
    t(2278, "void", 4, "P", 0, 0),
    t(2279, "trigger", 4, "P", 0, 0),
    t(2283, "anyelement", 4, "P", 0, 0),
    t(2950, "uuid", 16, "U", 0, 2951),
    t(3802, "jsonb", -1, "U", 0, 3807),
    t(3614, "tsvector", -1, "U", 0, 3643),
    t(4072, "jsonpath", -1, "U", 0, 4073),
    // Array types.
    t(1000, "_bool", -1, "A", 16, 0),
    t(1001, "_bytea", -1, "A", 17, 0),
    t(1002, "_char", -1, "A", 18, 0),
    t(1003, "_name", -1, "A", 19, 0),
    t(1005, "_int2", -1, "A", 21, 0),
    t(1006, "_int2vector", -1, "A", 22, 0),
    t(1007, "_int4", -1, "A", 23, 0),
    t(1008, "_regproc", -1, "A", 24, 0),
    t(1009, "_text", -1, "A", 25, 0),
    t(1010, "_tid", -1, "A", 27, 0),
    t(1011, "_xid", -1, "A", 28, 0),
    t(1012, "_cid", -1, "A", 29, 0),
    t(1013, "_oidvector", -1, "A", 30, 0),
    t(1014, "_bpchar", -1, "A", 1042, 0),
    t(1015, "_varchar", -1, "A", 1043, 0),
    t(1016, "_int8", -1, "A", 20, 0),
    t(1017, "_point", -1, "A", 600, 0),
    t(1021, "_float4", -1, "A", 700, 0),
    t(1022, "_float8", -1, "A", 701, 0),
    t(1028, "_oid", -1, "A", 26, 0),
    t(1034, "_aclitem", -1, "A", 1033, 0),
    t(1040, "_macaddr", -1, "A", 829, 0),
    t(1041, "_inet", -1, "A", 869, 0),
    t(651, "_cidr", -1, "A", 650, 0),
    t(143, "_xml", -1, "A", 142, 0),
    t(199, "_json", -1, "A", 114, 0),
    t(791, "_money", -1, "A", 790, 0),
    t(1182, "_date", -1, "A", 1082, 0),
    t(1183, "_time", -1, "A", 1083, 0),
    t(1115, "_timestamp", -1, "A", 1114, 0),
    t(1185, "_timestamptz", -1, "A", 1184, 0),
    t(1187, "_interval", -1, "A", 1186, 0),
    t(1270, "_timetz", -1, "A", 1266, 0),
    t(1561, "_bit", -1, "A", 1560, 0),
    t(1563, "_varbit", -1, "A", 1562, 0),
    t(1231, "_numeric", -1, "A", 1700, 0),
    t(2201, "_refcursor", -1, "A", 1790, 0),
    t(2207, "_regprocedure", -1, "A", 2202, 0),
    t(2210, "_regclass", -1, "A", 2205, 0),
    t(2211, "_regtype", -1, "A", 2206, 0),
    t(4090, "_regnamespace", -1, "A", 4089, 0),
    t(2287, "_record", -1, "P", 2249, 0),
    t(1263, "_cstring", -1, "A", 2275, 0),
    t(2951, "_uuid", -1, "A", 2950, 0),
    t(3807, "_jsonb", -1, "A", 3802, 0),
    t(3643, "_tsvector", -1, "A", 3614, 0),
    t(4073, "_jsonpath", -1, "A", 4072, 0),
];

/// The built-in type with this OID.
pub fn type_by_oid(oid: u32) -> Option<&'static BuiltinType> {
    TYPES.iter().find(|t| t.oid == oid)
}

/// The built-in type with this name (`int4`, `_text`, `pg_catalog.int4`), or with one
/// of the names SQL writes (`integer`, `text[]`, `character varying`).
pub fn type_by_name(name: &str) -> Option<&'static BuiltinType> {
    let name = name.trim().trim_matches('"');
    let name = name.strip_prefix("pg_catalog.").unwrap_or(name);
    let lower = name.to_ascii_lowercase();
    if let Some(elem) = lower.strip_suffix("[]") {
        let e = type_by_name(elem)?;
        return type_by_oid(e.array);
    }
    let canonical = match lower.as_str() {
        "boolean" => "bool",
        "smallint" => "int2",
        "integer" | "int" => "int4",
        "bigint" => "int8",
        "real" => "float4",
        "double precision" => "float8",
        "character varying" => "varchar",
        "character" => "bpchar",
        "timestamp without time zone" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "time without time zone" => "time",
        "time with time zone" => "timetz",
        "decimal" => "numeric",
        "\"char\"" => "char",
        other => other,
    };
    TYPES.iter().find(|t| t.name == canonical)
}

/// `format_type(oid, typmod)`: the SQL name of a type, with its modifier.
pub fn format_type(oid: u32, typmod: i64) -> Option<String> {
    let t = type_by_oid(oid)?;
    if t.elem != 0 && t.category == "A" && !matches!(t.oid, 22 | 30) {
        return format_type(t.elem, typmod).map(|e| format!("{e}[]"));
    }
    let base = match t.name {
        "bool" => "boolean",
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "float4" => "real",
        "float8" => "double precision",
        "varchar" => "character varying",
        "bpchar" => "character",
        "timestamp" => "timestamp without time zone",
        "timestamptz" => "timestamp with time zone",
        "time" => "time without time zone",
        "timetz" => "time with time zone",
        "char" => "\"char\"",
        other => other,
    };
    Some(match (t.name, typmod) {
        ("varchar" | "bpchar", m) if m >= 4 => format!("{base}({})", m - 4),
        ("numeric", m) if m >= 4 => {
            let m = m - 4;
            format!("numeric({},{})", (m >> 16) & 0xffff, m & 0xffff)
        }
        _ => base.to_string(),
    })
}

/// Access methods: (oid, name, type).
pub const ACCESS_METHODS: &[(u32, &str, &str)] = &[
    (2, "heap", "t"),
    (403, "btree", "i"),
    (405, "hash", "i"),
    (783, "gist", "i"),
    (2742, "gin", "i"),
    (4000, "spgist", "i"),
    (3580, "brin", "i"),
];

/// Collations: (oid, name, provider).
pub const COLLATIONS: &[(u32, &str, &str)] =
    &[(100, "default", "d"), (950, "C", "c"), (951, "POSIX", "c")];

/// The first OID of the functions `pg_proc` lists (TissDB's own numbering).
pub const FIRST_PROC_OID: u32 = 30_000;

/// PostgreSQL's `array_in`, `array_out`, `array_recv` and `array_send`, which drivers
/// compare an array type's I/O functions with.
pub const ARRAY_IN_OID: u32 = 750;
pub const ARRAY_OUT_OID: u32 = 751;
pub const ARRAY_RECV_OID: u32 = 2400;
pub const ARRAY_SEND_OID: u32 = 2401;

/// The functions `pg_proc` lists: (name, kind `f`/`a`/`w`, result type OID).
pub const FUNCTIONS: &[(&str, &str, u32)] = &[
    ("abs", "f", 1700),
    ("array_agg", "a", 2277),
    ("array_length", "f", 23),
    ("array_lower", "f", 23),
    ("array_to_string", "f", 25),
    ("array_upper", "f", 23),
    ("avg", "a", 1700),
    ("btrim", "f", 25),
    ("ceil", "f", 1700),
    ("coalesce", "f", 2283),
    ("col_description", "f", 25),
    ("concat", "f", 25),
    ("concat_ws", "f", 25),
    ("count", "a", 20),
    ("current_database", "f", 19),
    ("current_schema", "f", 19),
    ("current_schemas", "f", 1003),
    ("current_setting", "f", 25),
    ("date_part", "f", 701),
    ("date_trunc", "f", 1184),
    ("dense_rank", "w", 20),
    ("floor", "f", 1700),
    ("format_type", "f", 25),
    ("generate_series", "f", 20),
    ("gen_random_uuid", "f", 2950),
    ("has_schema_privilege", "f", 16),
    ("has_table_privilege", "f", 16),
    ("jsonb_typeof", "f", 25),
    ("lag", "w", 2283),
    ("lead", "w", 2283),
    ("left", "f", 25),
    ("length", "f", 23),
    ("lower", "f", 25),
    ("ltrim", "f", 25),
    ("max", "a", 2283),
    ("min", "a", 2283),
    ("mod", "f", 1700),
    ("now", "f", 1184),
    ("obj_description", "f", 25),
    ("pg_backend_pid", "f", 23),
    ("pg_get_expr", "f", 25),
    ("pg_get_indexdef", "f", 25),
    ("pg_get_userbyid", "f", 19),
    ("pg_table_is_visible", "f", 16),
    ("power", "f", 701),
    ("quote_ident", "f", 25),
    ("rank", "w", 20),
    ("ref_collection", "f", 25),
    ("ref_id", "f", 25),
    ("repeat", "f", 25),
    ("replace", "f", 25),
    ("reverse", "f", 25),
    ("right", "f", 25),
    ("round", "f", 1700),
    ("row_number", "w", 20),
    ("rtrim", "f", 25),
    ("sign", "f", 1700),
    ("sqrt", "f", 701),
    ("string_agg", "a", 25),
    ("string_to_array", "f", 1009),
    ("strpos", "f", 23),
    ("substring", "f", 25),
    ("sum", "a", 1700),
    ("trunc", "f", 1700),
    ("unnest", "f", 2283),
    ("upper", "f", 25),
    ("version", "f", 25),
];

/// SQL key words as `pg_get_keywords()` lists them: (word, category code).
pub const KEYWORDS: &[(&str, &str)] = &[
    ("all", "R"),
    ("analyze", "R"),
    ("and", "R"),
    ("any", "R"),
    ("array", "R"),
    ("as", "R"),
    ("asc", "R"),
    ("begin", "U"),
    ("between", "C"),
    ("bigint", "C"),
    ("boolean", "C"),
    ("both", "R"),
    ("by", "U"),
    ("case", "R"),
    ("cast", "R"),
    ("check", "R"),
    ("collate", "R"),
    ("collection", "U"),
    ("column", "R"),
    ("commit", "U"),
    ("constraint", "R"),
    ("copy", "U"),
    ("create", "R"),
    ("cross", "T"),
    ("current_date", "R"),
    ("current_user", "R"),
    ("default", "R"),
    ("delete", "U"),
    ("desc", "R"),
    ("distinct", "R"),
    ("do", "R"),
    ("drop", "U"),
    ("else", "R"),
    ("end", "R"),
    ("except", "R"),
    ("exists", "C"),
    ("explain", "U"),
    ("false", "R"),
    ("fetch", "R"),
    ("for", "R"),
    ("foreign", "R"),
    ("from", "R"),
    ("full", "T"),
    ("graph_table", "U"),
    ("group", "R"),
    ("having", "R"),
    ("in", "R"),
    ("index", "U"),
    ("inner", "T"),
    ("insert", "U"),
    ("integer", "C"),
    ("intersect", "R"),
    ("into", "R"),
    ("is", "T"),
    ("join", "T"),
    ("lateral", "R"),
    ("left", "T"),
    ("like", "T"),
    ("limit", "R"),
    ("match", "U"),
    ("natural", "T"),
    ("not", "R"),
    ("null", "R"),
    ("offset", "R"),
    ("on", "R"),
    ("or", "R"),
    ("order", "R"),
    ("outer", "T"),
    ("primary", "R"),
    ("references", "R"),
    ("right", "T"),
    ("rollback", "U"),
    ("select", "R"),
    ("set", "U"),
    ("table", "R"),
    ("then", "R"),
    ("to", "R"),
    ("true", "R"),
    ("union", "R"),
    ("unique", "R"),
    ("update", "U"),
    ("user", "R"),
    ("using", "R"),
    ("values", "C"),
    ("when", "R"),
    ("where", "R"),
    ("window", "R"),
    ("with", "R"),
];
