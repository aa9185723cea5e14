//! Scalar functions: lookup by name, result types, and evaluation.

use chrono::{DateTime, Datelike, Timelike, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::doc::Value;
use crate::error::{Error, Result, SqlState};
use crate::query::expr::{EvalContext, UNDEFINED_FUNCTION, as_text, compare, sort_cmp};
use crate::query::types::{self, SqlType};

/// A scalar function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarFunc {
    Lower,
    Upper,
    Length,
    OctetLength,
    Substring,
    Concat,
    ConcatWs,
    Btrim,
    Ltrim,
    Rtrim,
    Replace,
    Position,
    Left,
    Right,
    Repeat,
    Lpad,
    Rpad,
    Reverse,
    Abs,
    Round,
    Ceil,
    Floor,
    Trunc,
    Sqrt,
    Power,
    Mod,
    Sign,
    Now,
    CurrentDate,
    DateTrunc,
    Extract,
    DatePart,
    Coalesce,
    NullIf,
    Greatest,
    Least,
    Version,
    CurrentDatabase,
    CurrentSchema,
    CurrentUser,
    PgBackendPid,
    JsonbTypeof,
    GenRandomUuid,
    /// `ref_id(r)`: the document id a reference names (see [`reference_parts`]).
    RefId,
    /// `ref_collection(r)`: the collection a reference names.
    RefCollection,
    // ---- catalog and session information (PostgreSQL's, for clients and BI tools)
    CurrentSchemas,
    SetConfig,
    /// `pg_table_is_visible` and the other `*_is_visible`: everything is on the path.
    IsVisible,
    PgGetUserbyid,
    FormatType,
    PgGetExpr,
    /// Functions of things TissDB does not keep (comments, partition keys, sequences):
    /// always NULL.
    NullText,
    PgEncodingToChar,
    PgSizePretty,
    /// `has_table_privilege` and friends: the open default mode allows everything.
    HasPrivilege,
    /// `pg_is_in_recovery()`, `pg_relation_is_publishable()`: false.
    AlwaysFalse,
    /// Statistics counters TissDB does not keep: 0.
    ZeroCounter,
    QuoteIdent,
    ParseIdent,
    StringToArray,
    ArrayLower,
    ArrayUpper,
    ArrayLength,
    Cardinality,
    ArrayToString,
    ToRegtype,
    JsonBuildObject,
    /// `ARRAY[a, b, ...]`.
    MakeArray,
    /// `a[i]` on an array (1-based).
    ArraySubscript,
    /// An array's text form (`{1,2}`), for a cast to text.
    ArrayOut,
    /// A LIKE pattern with its own escape character, rewritten to use backslash.
    LikeEscape,
    /// `format(fmt, args...)`: `%s`, `%I` (identifier), `%L` (literal), `%%`.
    Format,
}

/// The (collection, id) a document reference names: a value `{"$ref":
/// "collection/id"}`, or the text `collection/id` itself.
pub fn reference_parts(v: &Value) -> Option<(String, String)> {
    let text = match v {
        Value::Object(o) if o.len() == 1 => match o.get("$ref") {
            Some(Value::String(s)) => s.as_str(),
            _ => return None,
        },
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    let (collection, id) = text.split_once('/')?;
    (!collection.is_empty() && !id.is_empty()).then(|| (collection.to_string(), id.to_string()))
}

const INVALID_PARAMETER: SqlState = SqlState("22023");

impl ScalarFunc {
    /// The function called `name` (lower-case), if there is one.
    pub fn by_name(name: &str) -> Option<ScalarFunc> {
        use ScalarFunc::*;
        Some(match name {
            "lower" => Lower,
            "upper" => Upper,
            "length" | "char_length" | "character_length" => Length,
            "octet_length" => OctetLength,
            "substring" | "substr" => Substring,
            "concat" => Concat,
            "concat_ws" => ConcatWs,
            "btrim" | "trim" => Btrim,
            "ltrim" => Ltrim,
            "rtrim" => Rtrim,
            "replace" => Replace,
            "strpos" | "position" => Position,
            "left" => Left,
            "right" => Right,
            "repeat" => Repeat,
            "lpad" => Lpad,
            "rpad" => Rpad,
            "reverse" => Reverse,
            "abs" => Abs,
            "round" => Round,
            "ceil" | "ceiling" => Ceil,
            "floor" => Floor,
            "trunc" => Trunc,
            "sqrt" => Sqrt,
            "power" | "pow" => Power,
            "mod" => Mod,
            "sign" => Sign,
            "now"
            | "current_timestamp"
            | "statement_timestamp"
            | "transaction_timestamp"
            | "localtimestamp" => Now,
            "current_date" => CurrentDate,
            "date_trunc" => DateTrunc,
            "extract" => Extract,
            "date_part" => DatePart,
            "coalesce" => Coalesce,
            "nullif" => NullIf,
            "greatest" => Greatest,
            "least" => Least,
            "version" => Version,
            "current_database" | "current_catalog" => CurrentDatabase,
            "current_schema" => CurrentSchema,
            "current_user" | "session_user" | "user" | "current_role" => CurrentUser,
            "pg_backend_pid" => PgBackendPid,
            "jsonb_typeof" | "json_typeof" => JsonbTypeof,
            "gen_random_uuid" | "uuid_generate_v4" => GenRandomUuid,
            "ref_id" => RefId,
            "ref_collection" => RefCollection,
            "current_schemas" => CurrentSchemas,
            "set_config" => SetConfig,
            "pg_table_is_visible"
            | "pg_type_is_visible"
            | "pg_function_is_visible"
            | "pg_collation_is_visible"
            | "pg_opclass_is_visible"
            | "pg_operator_is_visible"
            | "pg_conversion_is_visible"
            | "pg_statistics_obj_is_visible" => IsVisible,
            "pg_get_userbyid" => PgGetUserbyid,
            "format_type" => FormatType,
            "pg_get_expr" => PgGetExpr,
            "col_description"
            | "obj_description"
            | "shobj_description"
            | "pg_get_partkeydef"
            | "pg_get_serial_sequence"
            | "pg_get_viewdef"
            | "pg_get_statisticsobjdef_columns"
            | "pg_get_function_result"
            | "pg_get_function_arguments"
            | "pg_get_function_identity_arguments"
            | "pg_get_triggerdef"
            | "pg_get_ruledef"
            | "pg_tablespace_location" => NullText,
            "pg_encoding_to_char" => PgEncodingToChar,
            "pg_size_pretty" => PgSizePretty,
            "has_table_privilege"
            | "has_schema_privilege"
            | "has_any_column_privilege"
            | "has_column_privilege"
            | "has_database_privilege"
            | "has_function_privilege"
            | "has_sequence_privilege"
            | "pg_has_role" => HasPrivilege,
            "pg_is_in_recovery" | "pg_relation_is_publishable" => AlwaysFalse,
            "pg_stat_get_numscans"
            | "pg_stat_get_tuples_returned"
            | "pg_stat_get_live_tuples"
            | "pg_stat_get_dead_tuples" => ZeroCounter,
            "quote_ident" => QuoteIdent,
            "parse_ident" => ParseIdent,
            "string_to_array" => StringToArray,
            "array_lower" => ArrayLower,
            "array_upper" => ArrayUpper,
            "array_length" => ArrayLength,
            "cardinality" => Cardinality,
            "array_to_string" => ArrayToString,
            "to_regtype" => ToRegtype,
            "json_build_object" | "jsonb_build_object" => JsonBuildObject,
            "format" => Format,
            _ => return None,
        })
    }

    pub fn name(&self) -> String {
        format!("{self:?}").to_lowercase()
    }

    /// Whether the result can change between calls with the same arguments.
    pub fn is_volatile(&self) -> bool {
        matches!(
            self,
            ScalarFunc::Now | ScalarFunc::CurrentDate | ScalarFunc::GenRandomUuid
        )
    }

    /// Allowed argument counts.
    fn arity(&self) -> (usize, usize) {
        use ScalarFunc::*;
        match self {
            Now | CurrentDate | Version | CurrentDatabase | CurrentSchema | CurrentUser
            | PgBackendPid | GenRandomUuid => (0, 0),
            Lower | Upper | Length | OctetLength | Abs | Ceil | Floor | Sqrt | Sign | Reverse
            | JsonbTypeof | RefId | RefCollection => (1, 1),
            Round | Trunc | Btrim | Ltrim | Rtrim => (1, 2),
            Substring | Lpad | Rpad => (2, 3),
            Replace => (3, 3),
            Position | Left | Right | Repeat | Power | Mod | DateTrunc | Extract | DatePart
            | NullIf => (2, 2),
            Concat | Coalesce | Greatest | Least => (1, usize::MAX),
            ConcatWs => (2, usize::MAX),
            CurrentSchemas | IsVisible | PgGetUserbyid | PgEncodingToChar | PgSizePretty
            | QuoteIdent | Cardinality | ToRegtype | ArrayOut | ZeroCounter => (1, 1),
            ParseIdent => (1, 2),
            SetConfig => (3, 3),
            FormatType | ArrayLower | ArrayUpper | ArrayLength | ArraySubscript => (2, 2),
            PgGetExpr | StringToArray | ArrayToString => (2, 3),
            NullText => (0, 3),
            HasPrivilege => (1, 4),
            AlwaysFalse => (0, 1),
            JsonBuildObject | MakeArray => (0, usize::MAX),
            LikeEscape => (2, 2),
            Format => (1, usize::MAX),
        }
    }

    /// Checks the argument count and gives the result type.
    pub fn return_type(&self, args: &[SqlType]) -> Result<SqlType> {
        use ScalarFunc::*;
        let (lo, hi) = self.arity();
        if args.len() < lo || args.len() > hi {
            return Err(Error::invalid(
                UNDEFINED_FUNCTION,
                format!(
                    "function {}() does not take {} argument(s)",
                    self.name(),
                    args.len()
                ),
            ));
        }
        let first = args.first().cloned().unwrap_or(SqlType::Unknown);
        Ok(match self {
            Lower | Upper | Substring | Concat | ConcatWs | Btrim | Ltrim | Rtrim | Replace
            | Left | Right | Repeat | Lpad | Rpad | Reverse | Version | CurrentDatabase
            | CurrentSchema | CurrentUser | JsonbTypeof | RefId | RefCollection => SqlType::Text,
            Length | OctetLength | Position | PgBackendPid => SqlType::Int4,
            Abs | Ceil | Floor | Sign => match first {
                SqlType::Unknown => SqlType::Float8,
                t => t,
            },
            Round | Trunc => match first {
                SqlType::Float4 | SqlType::Float8 => SqlType::Float8,
                _ => SqlType::Numeric,
            },
            Mod => first,
            Sqrt | Power | DatePart => SqlType::Float8,
            Extract => SqlType::Numeric,
            Now | DateTrunc => SqlType::Timestamptz,
            CurrentDate => SqlType::Date,
            Coalesce | Greatest | Least => common_type(args)?,
            NullIf => first,
            GenRandomUuid => SqlType::Uuid,
            CurrentSchemas | ParseIdent | StringToArray => SqlType::Array(Box::new(SqlType::Text)),
            SetConfig | PgGetUserbyid | FormatType | PgGetExpr | NullText | PgEncodingToChar
            | PgSizePretty | QuoteIdent | ArrayToString | ArrayOut => SqlType::Text,
            IsVisible | HasPrivilege | AlwaysFalse => SqlType::Bool,
            ZeroCounter => SqlType::Int8,
            ArrayLower | ArrayUpper | ArrayLength | Cardinality => SqlType::Int4,
            ToRegtype => SqlType::Reg(types::RegKind::Type),
            JsonBuildObject => SqlType::Jsonb,
            LikeEscape | Format => SqlType::Text,
            MakeArray => SqlType::Array(Box::new(match args {
                [] => SqlType::Text,
                _ => common_type(args)?,
            })),
            ArraySubscript => match first {
                SqlType::Array(e) => *e,
                _ => SqlType::Jsonb,
            },
        })
    }

    /// Calls the function on evaluated arguments.
    pub fn call(&self, args: Vec<Value>, ctx: &EvalContext<'_>) -> Result<Value> {
        use ScalarFunc::*;
        // Functions that treat NULL arguments specially.
        match self {
            Coalesce => {
                return Ok(args
                    .into_iter()
                    .find(|v| !matches!(v, Value::Null))
                    .unwrap_or(Value::Null));
            }
            NullIf => {
                let mut it = args.into_iter();
                let (a, b) = (
                    it.next().unwrap_or(Value::Null),
                    it.next().unwrap_or(Value::Null),
                );
                return Ok(if compare(&a, &b) == Some(std::cmp::Ordering::Equal) {
                    Value::Null
                } else {
                    a
                });
            }
            Greatest | Least => {
                let mut best: Option<Value> = None;
                for v in args.into_iter().filter(|v| !matches!(v, Value::Null)) {
                    best = Some(match best {
                        None => v,
                        Some(b) => {
                            let o = sort_cmp(&v, &b);
                            let take = if *self == Greatest {
                                o.is_gt()
                            } else {
                                o.is_lt()
                            };
                            if take { v } else { b }
                        }
                    });
                }
                return Ok(best.unwrap_or(Value::Null));
            }
            Concat => {
                return Ok(Value::String(args.iter().filter_map(as_text).collect()));
            }
            ConcatWs => {
                let mut it = args.iter();
                let Some(sep) = it.next().and_then(as_text) else {
                    return Ok(Value::Null);
                };
                let parts: Vec<String> = it.filter_map(as_text).collect();
                return Ok(Value::String(parts.join(&sep)));
            }
            Now => return Ok(Value::DateTime(ctx.now)),
            CurrentDate => return types::cast(Value::DateTime(ctx.now), &SqlType::Date),
            Version => {
                return Ok(Value::String(format!(
                    "PostgreSQL 16.6 (TissDB {}) on x86_64-pc-linux-gnu",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            CurrentDatabase => return Ok(Value::String("tissdb".into())),
            CurrentSchema => return Ok(Value::String("public".into())),
            CurrentUser => return Ok(Value::String("tissdb".into())),
            PgBackendPid => return Ok(Value::Int(i64::from(std::process::id()))),
            GenRandomUuid => return Ok(Value::String(uuid::Uuid::new_v4().to_string())),
            RefId | RefCollection => {
                return Ok(match args.first().and_then(reference_parts) {
                    Some((c, id)) => Value::String(if *self == RefId { id } else { c }),
                    None => Value::Null,
                });
            }
            MakeArray => return Ok(Value::Array(args)),
            JsonBuildObject => {
                if !args.len().is_multiple_of(2) {
                    return Err(Error::invalid(
                        INVALID_PARAMETER,
                        "argument list must have even number of elements",
                    ));
                }
                let mut o = crate::doc::Object::default();
                let mut it = args.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    let Some(k) = as_text(&k) else {
                        return Err(Error::invalid(
                            INVALID_PARAMETER,
                            "null value not allowed for object key",
                        ));
                    };
                    o.insert(k, v);
                }
                return Ok(Value::Object(Box::new(o)));
            }
            NullText => return Ok(Value::Null),
            Format => {
                let mut it = args.into_iter();
                let Some(fmt) = it.next().and_then(|f| as_text(&f)) else {
                    return Ok(Value::Null);
                };
                return format_text(&fmt, it.collect()).map(Value::String);
            }
            AlwaysFalse => return Ok(Value::Bool(false)),
            HasPrivilege => return Ok(Value::Bool(true)),
            ZeroCounter => return Ok(Value::Int(0)),
            IsVisible => {
                return Ok(args.into_iter().next().map_or(Value::Null, |v| {
                    if matches!(v, Value::Null) {
                        Value::Null
                    } else {
                        Value::Bool(true)
                    }
                }));
            }
            ArrayToString => {
                let mut it = args.into_iter();
                let (Some(Value::Array(items)), Some(sep)) = (it.next(), it.next()) else {
                    return Ok(Value::Null);
                };
                let Some(sep) = as_text(&sep) else {
                    return Ok(Value::Null);
                };
                let null_text = it.next().and_then(|v| as_text(&v));
                let parts: Vec<String> = items
                    .iter()
                    .filter_map(|v| match v {
                        Value::Null => null_text.clone(),
                        other => as_text(other),
                    })
                    .collect();
                return Ok(Value::String(parts.join(&sep)));
            }
            StringToArray => {
                let mut it = args.into_iter();
                let (Some(s), Some(sep)) = (it.next(), it.next()) else {
                    return Ok(Value::Null);
                };
                let Some(s) = as_text(&s) else {
                    return Ok(Value::Null);
                };
                let null_text = it.next().and_then(|v| as_text(&v));
                let item = |p: &str| match &null_text {
                    Some(n) if n == p => Value::Null,
                    _ => Value::String(p.to_string()),
                };
                if s.is_empty() {
                    return Ok(Value::Array(Vec::new()));
                }
                return Ok(Value::Array(match as_text(&sep) {
                    None => s.chars().map(|c| item(&c.to_string())).collect(),
                    Some(sep) if sep.is_empty() => vec![item(&s)],
                    Some(sep) => s.split(sep.as_str()).map(item).collect(),
                }));
            }
            _ => {}
        }
        if args.iter().any(|v| matches!(v, Value::Null)) {
            return Ok(Value::Null);
        }
        let text = |i: usize| args.get(i).and_then(as_text).unwrap_or_default();
        let int = |i: usize| -> Result<i64> {
            match args.get(i) {
                Some(Value::Int(n)) => Ok(*n),
                Some(v) => match types::cast(v.clone(), &SqlType::Int8)? {
                    Value::Int(n) => Ok(n),
                    _ => Err(Error::invalid(INVALID_PARAMETER, "expected an integer")),
                },
                None => Err(Error::invalid(INVALID_PARAMETER, "missing argument")),
            }
        };
        let arg0 = args.first().cloned().unwrap_or(Value::Null);
        let array_len = || match &arg0 {
            Value::Array(a) => Some(a.len() as i64),
            _ => None,
        };
        Ok(match self {
            CurrentSchemas => {
                let mut path = Vec::new();
                if arg0 == Value::Bool(true) {
                    path.push(Value::String("pg_catalog".into()));
                }
                path.push(Value::String("public".into()));
                Value::Array(path)
            }
            SetConfig => args.get(1).cloned().unwrap_or(Value::Null),
            PgGetUserbyid => Value::String("tissdb".into()),
            FormatType => match crate::query::system::builtin::format_type(
                u32::try_from(int(0)?).unwrap_or(0),
                int(1).unwrap_or(-1),
            ) {
                Some(t) => Value::String(t),
                None => Value::String("???".into()),
            },
            PgGetExpr => Value::String(text(0)),
            LikeEscape => {
                let esc = text(1);
                let mut esc_chars = esc.chars();
                let (Some(e), None) = (esc_chars.next(), esc_chars.next()) else {
                    if esc.is_empty() {
                        // ESCAPE '': no escape character at all.
                        return Ok(Value::String(text(0).replace('\\', "\\\\")));
                    }
                    return Err(Error::invalid(
                        SqlState("22019"),
                        "invalid escape string: it must be empty or one character",
                    ));
                };
                let mut out = String::new();
                let mut chars = text(0).chars().collect::<Vec<_>>().into_iter();
                while let Some(c) = chars.next() {
                    if c == e {
                        out.push('\\');
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                    } else if c == '\\' {
                        out.push_str("\\\\");
                    } else {
                        out.push(c);
                    }
                }
                Value::String(out)
            }
            PgEncodingToChar => Value::String(if int(0)? == 6 { "UTF8" } else { "" }.into()),
            PgSizePretty => Value::String(size_pretty(int(0)?)),
            QuoteIdent => Value::String(crate::query::system::quote_ident(&text(0))),
            ParseIdent => Value::Array(
                parse_ident(&text(0))?
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            ),
            ArrayLower => match (array_len(), int(1)?) {
                (Some(n), 1) if n > 0 => Value::Int(1),
                _ => Value::Null,
            },
            ArrayUpper | ArrayLength => match (array_len(), int(1)?) {
                (Some(n), 1) if n > 0 => Value::Int(n),
                _ => Value::Null,
            },
            Cardinality => array_len().map_or(Value::Null, Value::Int),
            ToRegtype => crate::query::system::builtin::type_by_name(&text(0))
                .map_or(Value::Null, |t| Value::Int(i64::from(t.oid))),
            ArraySubscript => match &arg0 {
                Value::Array(items) => {
                    let i = int(1)?;
                    usize::try_from(i - 1)
                        .ok()
                        .and_then(|i| items.get(i).cloned())
                        .unwrap_or(Value::Null)
                }
                _ => Value::Null,
            },
            ArrayOut => match &arg0 {
                Value::Array(items) => {
                    let elem = items
                        .iter()
                        .find(|v| !matches!(v, Value::Null))
                        .map_or(SqlType::Text, SqlType::of_value);
                    Value::String(types::format_array(&elem, items))
                }
                other => Value::String(as_text(other).unwrap_or_default()),
            },
            Lower => Value::String(text(0).to_lowercase()),
            Upper => Value::String(text(0).to_uppercase()),
            Length => match &arg0 {
                Value::Binary(b) => Value::Int(b.len() as i64),
                _ => Value::Int(text(0).chars().count() as i64),
            },
            OctetLength => match &arg0 {
                Value::Binary(b) => Value::Int(b.len() as i64),
                _ => Value::Int(text(0).len() as i64),
            },
            Substring => {
                let s: Vec<char> = text(0).chars().collect();
                let start = int(1)?;
                let (from, to) = match args.get(2) {
                    Some(_) => {
                        let len = int(2)?;
                        if len < 0 {
                            return Err(Error::invalid(
                                SqlState("22011"),
                                "negative substring length not allowed",
                            ));
                        }
                        (start, start.saturating_add(len))
                    }
                    None => (start, i64::MAX),
                };
                let from = from.max(1) as usize - 1;
                let to = (to.max(1) as usize - 1).min(s.len());
                Value::String(if from >= to {
                    String::new()
                } else {
                    s[from..to].iter().collect()
                })
            }
            Btrim | Ltrim | Rtrim => {
                let s = text(0);
                let chars: Vec<char> = if args.len() > 1 {
                    text(1).chars().collect()
                } else {
                    vec![' ']
                };
                let f = |c: char| chars.contains(&c);
                Value::String(match self {
                    Btrim => s.trim_matches(f).to_string(),
                    Ltrim => s.trim_start_matches(f).to_string(),
                    _ => s.trim_end_matches(f).to_string(),
                })
            }
            Replace => Value::String(text(0).replace(&text(1), &text(2))),
            Position => {
                let (hay, needle) = (text(0), text(1));
                Value::Int(match hay.find(&needle) {
                    Some(byte) => hay[..byte].chars().count() as i64 + 1,
                    None => 0,
                })
            }
            Left | Right => {
                let s: Vec<char> = text(0).chars().collect();
                let n = int(1)?;
                let len = s.len() as i64;
                let take = if n >= 0 { n.min(len) } else { (len + n).max(0) } as usize;
                Value::String(if *self == Left {
                    s[..take].iter().collect()
                } else {
                    s[s.len() - take..].iter().collect()
                })
            }
            Repeat => {
                let n = int(1)?.max(0) as usize;
                let s = text(0);
                if s.len().saturating_mul(n) > 64 << 20 {
                    return Err(Error::limit("repeat() result would exceed 64 MiB"));
                }
                Value::String(s.repeat(n))
            }
            Lpad | Rpad => {
                // PostgreSQL's: the text cut or filled to `length` characters, the fill
                // (a space by default) repeated before (lpad) or after (rpad) it.
                let s = text(0);
                let length = usize::try_from(int(1)?.max(0)).unwrap_or(usize::MAX);
                let fill = match args.get(2) {
                    Some(_) => text(2),
                    None => " ".to_string(),
                };
                let have = s.chars().count();
                if have >= length || fill.is_empty() {
                    return Ok(Value::String(s.chars().take(length).collect()));
                }
                if length.saturating_mul(fill.len().max(4)) > 64 << 20 {
                    return Err(Error::limit(format!(
                        "{}() result would exceed 64 MiB",
                        self.name()
                    )));
                }
                let padding: String = fill.chars().cycle().take(length - have).collect();
                Value::String(match self {
                    Lpad => padding + &s,
                    _ => s + &padding,
                })
            }
            Reverse => Value::String(text(0).chars().rev().collect()),
            Abs => match arg0 {
                Value::Int(i) => Value::Int(i.checked_abs().ok_or_else(|| {
                    Error::invalid(types::NUMERIC_VALUE_OUT_OF_RANGE, "bigint out of range")
                })?),
                Value::Float(f) => Value::Float(f.abs()),
                Value::Numeric(n) => Value::Numeric(dec(&n)?.abs().to_string()),
                other => return Err(bad_arg(self, &other)),
            },
            Round | Trunc => {
                let places = if args.len() > 1 { int(1)? } else { 0 };
                match arg0 {
                    Value::Float(f) if args.len() == 1 => Value::Float(if *self == Round {
                        f.round_ties_even()
                    } else {
                        f.trunc()
                    }),
                    v => {
                        let d = match v {
                            Value::Int(i) => Decimal::from(i),
                            Value::Float(f) => Decimal::try_from(f).map_err(|_| {
                                Error::invalid(
                                    types::NUMERIC_VALUE_OUT_OF_RANGE,
                                    "value out of range",
                                )
                            })?,
                            Value::Numeric(n) => dec(&n)?,
                            other => return Err(bad_arg(self, &other)),
                        };
                        let dp = places.clamp(0, 28) as u32;
                        let r = if *self == Round {
                            d.round_dp_with_strategy(
                                dp,
                                rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                            )
                        } else {
                            d.trunc_with_scale(dp)
                        };
                        Value::Numeric(r.to_string())
                    }
                }
            }
            Ceil | Floor => match arg0 {
                Value::Int(i) => Value::Int(i),
                Value::Float(f) => Value::Float(if *self == Ceil { f.ceil() } else { f.floor() }),
                Value::Numeric(n) => {
                    let d = dec(&n)?;
                    Value::Numeric(if *self == Ceil { d.ceil() } else { d.floor() }.to_string())
                }
                other => return Err(bad_arg(self, &other)),
            },
            Sign => match arg0 {
                Value::Int(i) => Value::Int(i.signum()),
                Value::Float(f) => Value::Float(if f == 0.0 { 0.0 } else { f.signum() }),
                Value::Numeric(n) => {
                    let d = dec(&n)?;
                    Value::Numeric(if d.is_zero() {
                        "0".into()
                    } else if d.is_sign_negative() {
                        "-1".into()
                    } else {
                        "1".into()
                    })
                }
                other => return Err(bad_arg(self, &other)),
            },
            Sqrt => {
                let f = float(&arg0, self)?;
                if f < 0.0 {
                    return Err(Error::invalid(
                        SqlState("2201F"),
                        "cannot take square root of a negative number",
                    ));
                }
                Value::Float(f.sqrt())
            }
            Power => Value::Float(
                float(&arg0, self)?.powf(float(args.get(1).unwrap_or(&Value::Null), self)?),
            ),
            Mod => crate::query::expr::binary(
                crate::query::expr::BinOp::Mod,
                arg0,
                args.get(1).cloned().unwrap_or(Value::Null),
            )?,
            DateTrunc => {
                let field = text(0).to_lowercase();
                let micros = timestamp(args.get(1), self)?;
                Value::DateTime(date_trunc(&field, micros)?)
            }
            Extract | DatePart => {
                let field = text(0).to_lowercase();
                let micros = timestamp(args.get(1), self)?;
                let d = extract(&field, micros)?;
                if *self == Extract {
                    Value::Numeric(d.normalize().to_string())
                } else {
                    Value::Float(d.to_f64().unwrap_or(f64::NAN))
                }
            }
            JsonbTypeof => Value::String(
                match arg0 {
                    Value::Object(_) => "object",
                    Value::Array(_) => "array",
                    Value::String(_) | Value::DateTime(_) | Value::Binary(_) => "string",
                    Value::Bool(_) => "boolean",
                    Value::Null => "null",
                    _ => "number",
                }
                .into(),
            ),
            Coalesce | NullIf | Greatest | Least | Concat | ConcatWs | Now | CurrentDate
            | Version | CurrentDatabase | CurrentSchema | CurrentUser | PgBackendPid
            | GenRandomUuid | RefId | RefCollection | MakeArray | JsonBuildObject | NullText
            | AlwaysFalse | HasPrivilege | ZeroCounter | IsVisible | ArrayToString
            | StringToArray | Format => {
                return Err(Error::Internal("handled above".into()));
            }
        })
    }
}

fn bad_arg(f: &ScalarFunc, v: &Value) -> Error {
    Error::invalid(
        UNDEFINED_FUNCTION,
        format!(
            "function {}({}) does not exist",
            f.name(),
            SqlType::of_value(v).name()
        ),
    )
}

fn dec(s: &str) -> Result<Decimal> {
    types::parse_decimal(s).ok_or_else(|| {
        Error::invalid(
            SqlState::INVALID_TEXT_REPRESENTATION,
            format!("invalid numeric {s:?}"),
        )
    })
}

fn float(v: &Value, f: &ScalarFunc) -> Result<f64> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(x) => Ok(*x),
        Value::Numeric(n) => n.parse().map_err(|_| bad_arg(f, v)),
        other => Err(bad_arg(f, other)),
    }
}

fn timestamp(v: Option<&Value>, f: &ScalarFunc) -> Result<i64> {
    match v {
        Some(Value::DateTime(m)) => Ok(*m),
        Some(Value::String(s)) => match SqlType::Timestamptz.parse_text(s)? {
            Value::DateTime(m) => Ok(m),
            other => Err(bad_arg(f, &other)),
        },
        Some(other) => Err(bad_arg(f, other)),
        None => Err(Error::invalid(
            INVALID_PARAMETER,
            "missing timestamp argument",
        )),
    }
}

fn to_datetime(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| Error::invalid(types::DATETIME_FIELD_OVERFLOW, "timestamp out of range"))
}

fn unit_error(field: &str) -> Error {
    Error::invalid(
        INVALID_PARAMETER,
        format!("unit \"{field}\" not recognized"),
    )
}

/// Truncates a timestamp to the start of its `field`.
pub fn date_trunc(field: &str, micros: i64) -> Result<i64> {
    let t = to_datetime(micros)?;
    let d = t.date_naive();
    let day_start = |date: chrono::NaiveDate| -> Result<i64> {
        Ok(date
            .and_hms_opt(0, 0, 0)
            .ok_or_else(|| unit_error(field))?
            .and_utc()
            .timestamp_micros())
    };
    let ymd = |y: i32, m: u32| -> Result<i64> {
        day_start(chrono::NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(|| unit_error(field))?)
    };
    Ok(match field {
        "microseconds" | "microsecond" => micros,
        "milliseconds" | "millisecond" => micros.div_euclid(1000) * 1000,
        "second" | "seconds" => micros.div_euclid(1_000_000) * 1_000_000,
        "minute" | "minutes" => micros.div_euclid(60_000_000) * 60_000_000,
        "hour" | "hours" => micros.div_euclid(3_600_000_000) * 3_600_000_000,
        "day" | "days" => day_start(d)?,
        "week" | "weeks" => {
            day_start(d - chrono::Duration::days(i64::from(d.weekday().num_days_from_monday())))?
        }
        "month" | "months" => ymd(d.year(), d.month())?,
        "quarter" => ymd(d.year(), (d.month() - 1) / 3 * 3 + 1)?,
        "year" | "years" => ymd(d.year(), 1)?,
        "decade" => ymd(d.year().div_euclid(10) * 10, 1)?,
        "century" => ymd((d.year() - 1).div_euclid(100) * 100 + 1, 1)?,
        _ => return Err(unit_error(field)),
    })
}

/// A field of a timestamp, as EXTRACT gives it.
pub fn extract(field: &str, micros: i64) -> Result<Decimal> {
    let t = to_datetime(micros)?;
    let frac = Decimal::new(i64::from(t.timestamp_subsec_micros()), 6);
    Ok(match field {
        "year" => Decimal::from(t.year()),
        "month" => Decimal::from(t.month()),
        "day" => Decimal::from(t.day()),
        "hour" => Decimal::from(t.hour()),
        "minute" => Decimal::from(t.minute()),
        "second" => Decimal::from(t.second()) + frac,
        "millisecond" | "milliseconds" => (Decimal::from(t.second()) + frac) * Decimal::from(1000),
        "microsecond" | "microseconds" => Decimal::from(
            i64::from(t.second()) * 1_000_000 + i64::from(t.timestamp_subsec_micros()),
        ),
        "dow" => Decimal::from(t.weekday().num_days_from_sunday()),
        "isodow" => Decimal::from(t.weekday().number_from_monday()),
        "doy" => Decimal::from(t.ordinal()),
        "week" => Decimal::from(t.iso_week().week()),
        "quarter" => Decimal::from((t.month() - 1) / 3 + 1),
        "epoch" => Decimal::new(micros, 6),
        "decade" => Decimal::from(t.year().div_euclid(10)),
        "century" => Decimal::from((t.year() - 1).div_euclid(100) + 1),
        _ => return Err(unit_error(field)),
    })
}

/// The type that values of all `types` convert to (CASE, COALESCE, UNION).
pub fn common_type(types: &[SqlType]) -> Result<SqlType> {
    let known: Vec<&SqlType> = types.iter().filter(|t| **t != SqlType::Unknown).collect();
    let Some(first) = known.first() else {
        return Ok(SqlType::Text);
    };
    if known.iter().all(|t| t == first) {
        return Ok((*first).clone());
    }
    if known.iter().all(|t| t.is_numeric()) {
        let rank = |t: &SqlType| match t {
            SqlType::Int2 => 0,
            SqlType::Int4 => 1,
            SqlType::Int8 => 2,
            SqlType::Numeric | SqlType::NumericTyped(..) => 3,
            SqlType::Float4 => 4,
            _ => 5,
        };
        let best = known.iter().max_by_key(|t| rank(t)).map(|t| (*t).clone());
        return Ok(best.unwrap_or(SqlType::Float8));
    }
    if known.iter().all(|t| t.is_text()) {
        return Ok(SqlType::Text);
    }
    if known
        .iter()
        .all(|t| matches!(t, SqlType::Timestamp | SqlType::Timestamptz | SqlType::Date))
    {
        return Ok(SqlType::Timestamptz);
    }
    if known.iter().any(|t| t.is_json()) {
        return Ok(SqlType::Jsonb);
    }
    Err(Error::invalid(
        types::DATATYPE_MISMATCH,
        format!(
            "types {} and {} cannot be matched",
            first.name(),
            known
                .iter()
                .find(|t| *t != first)
                .map(|t| t.name())
                .unwrap_or_default()
        ),
    ))
}

/// PostgreSQL's `format`: `%s` text, `%I` a quoted identifier, `%L` a quoted
/// literal (NULL unquoted), `%%` a percent sign.
fn format_text(fmt: &str, args: Vec<Value>) -> Result<String> {
    let mut out = String::new();
    let mut next = args.into_iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next().ok_or_else(|| {
            Error::invalid(INVALID_PARAMETER, "unterminated format() type specifier")
        })?;
        if spec == '%' {
            out.push('%');
            continue;
        }
        let arg = next
            .next()
            .ok_or_else(|| Error::invalid(INVALID_PARAMETER, "too few arguments for format()"))?;
        match spec {
            's' => out.push_str(&as_text(&arg).unwrap_or_default()),
            'I' => {
                let Some(t) = as_text(&arg) else {
                    return Err(Error::invalid(
                        SqlState("22004"),
                        "null values cannot be formatted as an SQL identifier",
                    ));
                };
                out.push_str(&crate::query::system::quote_ident(&t));
            }
            'L' => match as_text(&arg) {
                None => out.push_str("NULL"),
                Some(t) => out.push_str(&format!("'{}'", t.replace('\'', "''"))),
            },
            other => {
                return Err(Error::invalid(
                    INVALID_PARAMETER,
                    format!("unrecognized format() type specifier \"{other}\""),
                ));
            }
        }
    }
    Ok(out)
}

/// `pg_size_pretty`: bytes in the largest unit that keeps at least 10 of it.
fn size_pretty(bytes: i64) -> String {
    let mut size = bytes as f64;
    for unit in ["bytes", "kB", "MB", "GB", "TB"] {
        if size.abs() < 10.0 * 1024.0 || unit == "TB" {
            return format!("{} {unit}", size.round() as i64);
        }
        size /= 1024.0;
    }
    unreachable!()
}

/// `parse_ident`: a qualified identifier split into its parts, unquoted or folded.
fn parse_ident(s: &str) -> Result<Vec<String>> {
    let bad = || {
        Error::invalid(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("string is not a valid identifier: \"{s}\""),
        )
    };
    let mut parts = Vec::new();
    let mut chars = s.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(bad()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' || c.is_whitespace() {
                    break;
                }
                part.push(c.to_ascii_lowercase());
                chars.next();
            }
            if part.is_empty() {
                return Err(bad());
            }
        }
        parts.push(part);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            Some('.') => continue,
            None => break,
            Some(_) => return Err(bad()),
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(f: ScalarFunc, args: Vec<Value>) -> Value {
        f.call(
            args,
            &EvalContext {
                params: &[],
                now: 0,
                subqueries: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn strings() {
        let s = |x: &str| Value::String(x.into());
        assert_eq!(call(ScalarFunc::Lower, vec![s("AbC")]), s("abc"));
        assert_eq!(call(ScalarFunc::Length, vec![s("héllo")]), Value::Int(5));
        assert_eq!(
            call(
                ScalarFunc::Substring,
                vec![s("hello"), Value::Int(2), Value::Int(3)]
            ),
            s("ell")
        );
        assert_eq!(
            call(
                ScalarFunc::Substring,
                vec![s("hello"), Value::Int(0), Value::Int(2)]
            ),
            s("h")
        );
        assert_eq!(
            call(ScalarFunc::Concat, vec![s("a"), Value::Null, Value::Int(1)]),
            s("a1")
        );
        assert_eq!(call(ScalarFunc::Upper, vec![Value::Null]), Value::Null);
    }

    #[test]
    fn numbers_and_dates() {
        assert_eq!(
            call(
                ScalarFunc::Round,
                vec![Value::Numeric("2.345".into()), Value::Int(2)]
            ),
            Value::Numeric("2.35".into())
        );
        assert_eq!(call(ScalarFunc::Abs, vec![Value::Int(-3)]), Value::Int(3));
        let t = SqlType::Timestamptz
            .parse_text("2023-10-26 10:11:12.5+00")
            .unwrap();
        let Value::DateTime(m) = t else { panic!() };
        assert_eq!(
            SqlType::Timestamptz
                .format_text(&Value::DateTime(date_trunc("month", m).unwrap()))
                .unwrap(),
            "2023-10-01 00:00:00+00"
        );
        assert_eq!(extract("second", m).unwrap().to_string(), "12.500000");
        assert_eq!(extract("year", m).unwrap(), Decimal::from(2023));
        assert!(date_trunc("fortnight", m).is_err());
    }

    #[test]
    fn common_types() {
        assert_eq!(
            common_type(&[SqlType::Int4, SqlType::Float8]).unwrap(),
            SqlType::Float8
        );
        assert_eq!(
            common_type(&[SqlType::Unknown, SqlType::Text]).unwrap(),
            SqlType::Text
        );
        assert!(common_type(&[SqlType::Text, SqlType::Int4]).is_err());
    }

    #[test]
    fn catalog_text_functions() {
        let s = |v: &str| Value::String(v.into());
        assert_eq!(
            call(
                ScalarFunc::Format,
                vec![
                    s("%I.%I = %L, %s%%"),
                    s("public"),
                    s("Mixed Case"),
                    s("it's"),
                    Value::Null
                ]
            ),
            s("public.\"Mixed Case\" = 'it''s', %")
        );
        assert_eq!(
            call(ScalarFunc::ParseIdent, vec![s("public.\"My \"\"T\"\"\"")]),
            Value::Array(vec![s("public"), s("My \"T\"")])
        );
        assert!(parse_ident("a..b").is_err());
        assert_eq!(size_pretty(123), "123 bytes");
        assert_eq!(size_pretty(123_456_789), "118 MB");
        assert_eq!(
            call(ScalarFunc::StringToArray, vec![s("a,,b"), s(","), s("")]),
            Value::Array(vec![s("a"), Value::Null, s("b")])
        );
        assert_eq!(
            call(ScalarFunc::LikeEscape, vec![s("pg/_%"), s("/")]),
            s("pg\\_%")
        );
        let arr = Value::Array(vec![Value::Int(5), Value::Int(7)]);
        assert_eq!(
            call(ScalarFunc::ArrayUpper, vec![arr.clone(), Value::Int(1)]),
            Value::Int(2)
        );
        assert_eq!(
            call(ScalarFunc::ArrayLower, vec![arr.clone(), Value::Int(2)]),
            Value::Null
        );
        assert_eq!(
            call(ScalarFunc::ArraySubscript, vec![arr.clone(), Value::Int(2)]),
            Value::Int(7)
        );
        assert_eq!(
            call(ScalarFunc::ArraySubscript, vec![arr, Value::Int(3)]),
            Value::Null
        );
        assert_eq!(
            call(
                ScalarFunc::FormatType,
                vec![Value::Int(1043), Value::Int(24)]
            ),
            s("character varying(20)")
        );
        assert_eq!(
            call(
                ScalarFunc::FormatType,
                vec![Value::Int(1231), Value::Int(-1)]
            ),
            s("numeric[]")
        );
    }
}
