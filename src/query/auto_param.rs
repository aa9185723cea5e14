//! Literals of simple-protocol statements made parameters, so that statements of one
//! shape share one parsed, bound and planned statement.
//!
//! A client that sends its values inside the text (the simple query protocol: psql,
//! psycopg2, `pgbench -M simple`) has every statement parsed, bound and planned afresh:
//! for a point SELECT by key that was 50 of the 85 us of server CPU it took, where the
//! same statement prepared took 36. Here a statement's numbers and quoted strings are
//! taken out ([`template`]): `SELECT v FROM t WHERE id = 7` becomes `SELECT v FROM t
//! WHERE id = $1` with 7 as its parameter, and the session's kept statements
//! ([`crate::session::Session::prepare_kept`]) hand the prepared template out again the next time, with
//! the plan its executions keep.
//!
//! Only where that gives the answer the literal would: a number becomes a parameter of
//! the literal's own type (`int4`, `int8` or `numeric`), a string one of unknown type,
//! typed by its context as the literal would be, then read by that type's input
//! function; a string cast with `::` (`'{"a": 1}'::jsonb`) a text parameter, which the
//! cast reads as it reads the literal. Literals that steer the statement's shape stay as
//! written: those in a select list, `ORDER BY`, `GROUP BY`, `LIMIT`, `OFFSET`, `FETCH`,
//! `RETURNING` and brackets, field names after `->`, `->>`, `#>` and `#>>` (an index on
//! `doc->>'brand'` needs the name), and strings after a type name (`DATE '2024-01-01'`).
//! A statement with a comment, a `$`, an `E'...'`-style string, a number cast with `::`
//! (but an integer cast to text, `7::text`, which is a text parameter) or more than one
//! statement is run as written; so is the first statement of each template a session
//! meets (a template is prepared the second time, so that statements of a shape met
//! once are not parsed and bound twice). And only statements whose plan the values do
//! not steer use it ([`usable`]): point reads by key or index, UPDATEs and DELETEs by
//! key, and INSERTs of VALUES; other statements are planned with their literals, as
//! before. A template that fails to prepare, or a value its parameter's type does not
//! read, runs the statement as written: its error, if any, is the literal's.

use crate::doc::Value;
use crate::query::types::SqlType;
use crate::session::Prepared;
use tissdb_dialect::TissStatement;
use tissdb_dialect::sqlparser::ast;

/// Longest statement text made a template.
pub const MAX_TEXT: usize = 4096;

/// A literal taken out of a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Int(i64),
    /// A number with a decimal point, as written.
    Numeric(String),
    /// A quoted string, its quotes doubled inside taken as one.
    Str(String),
    /// An integer cast to text (`7::text`), as that text.
    Text(String),
}

impl Literal {
    /// The type its parameter is declared with: a number's own, a string's unknown.
    pub fn hint(&self) -> Option<SqlType> {
        match self {
            Literal::Int(i) if i32::try_from(*i).is_ok() => Some(SqlType::Int4),
            Literal::Int(_) => Some(SqlType::Int8),
            Literal::Numeric(_) => Some(SqlType::Numeric),
            Literal::Str(_) => None,
            Literal::Text(_) => Some(SqlType::Text),
        }
    }

    /// The parameter's value for a parameter typed `ty`, as the literal would be read
    /// there; None if it is not (the statement then runs as written).
    pub fn value(&self, ty: &SqlType) -> Option<Value> {
        match self {
            Literal::Int(i) => match ty {
                SqlType::Int4 | SqlType::Int8 => Some(Value::Int(*i)),
                _ => None,
            },
            Literal::Numeric(n) => match ty {
                SqlType::Numeric => {
                    let d = crate::query::types::parse_decimal(n)?;
                    Some(Value::Numeric(d.to_string()))
                }
                _ => None,
            },
            Literal::Text(t) => match ty {
                SqlType::Text => Some(Value::String(t.clone())),
                _ => None,
            },
            // As the wire reads a text parameter sent with no type: the string, made
            // the parameter's type.
            Literal::Str(s) => match ty {
                SqlType::Unknown | SqlType::Text => Some(Value::String(s.clone())),
                other => other.coerce(Value::String(s.clone())).ok(),
            },
        }
    }
}

/// A statement with its literals taken out.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    /// The text with `$1`, `$2`, ... where the literals were.
    pub text: String,
    pub literals: Vec<Literal>,
}

/// Where in a statement the scanner is, for the literals met there.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Zone {
    /// Literals here become parameters.
    Values,
    /// Literals here stay: they shape the statement or its result.
    Kept,
}

/// Words after which a literal is a value (other words before a string make it a typed
/// literal, `DATE '...'`, kept as written).
const VALUE_WORDS: &[&str] = &[
    "and", "or", "not", "like", "ilike", "when", "then", "else", "between", "from", "in", "is",
    "set", "values", "where", "on", "having",
];

/// The statement's literals taken out, or None if it has none that may be, or is not one
/// statement this applies to (see the module doc).
pub fn template(sql: &str) -> Option<Template> {
    if sql.len() > MAX_TEXT {
        return None;
    }
    let body = sql.trim_end();
    let body = body.strip_suffix(';').unwrap_or(body);
    let first = body
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()?;
    if !["select", "insert", "update", "delete"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k))
    {
        return None;
    }
    let bytes = body.as_bytes();
    let mut text = String::with_capacity(body.len() + 8);
    let mut literals = Vec::new();
    // The zone at each bracket depth; the current one is last.
    let mut zones = vec![Zone::Values];
    // The last word and the last symbol before the current position (one is None).
    let mut last_word: Option<&str> = None;
    let mut last_symbol: Option<&str> = None;
    // `GROUP` or `ORDER` just seen: the `BY` after it starts a kept zone.
    let mut before_by = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let zone = *zones.last()?;
        match b {
            b'\'' => {
                if i > 0
                    && bytes
                        .get(i - 1)
                        .is_some_and(|p| is_word_byte(*p) || *p == b'&')
                {
                    return None; // E'...', B'...', X'...', N'...', U&'...'
                }
                let (value, end) = quoted(bytes, i)?;
                let next = body.get(end..)?.trim_start();
                if next.starts_with('\'') {
                    return None; // 'a' 'b' continued on the next line
                }
                let raw = body.get(i..end)?;
                let word_ok =
                    last_word.is_none_or(|w| VALUE_WORDS.iter().any(|k| w.eq_ignore_ascii_case(k)));
                if zone == Zone::Values && word_ok && value_symbol(last_symbol) {
                    // `'...'::type` becomes a text parameter the cast reads, as it reads
                    // the literal (a parameter typed by the cast would be read as that
                    // type when bound and then cast again: a jsonb string scalar twice).
                    literals.push(match next.starts_with("::") {
                        true => Literal::Text(value),
                        false => Literal::Str(value),
                    });
                    text.push('$');
                    text.push_str(&literals.len().to_string());
                } else {
                    text.push_str(raw);
                }
                i = end;
                last_word = None;
                last_symbol = Some("'");
            }
            b'"' => {
                let (_, end) = quoted(bytes, i)?;
                text.push_str(body.get(i..end)?);
                i = end;
                last_word = Some("\"");
                last_symbol = None;
            }
            b'0'..=b'9' => {
                let mut end = i;
                while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                }
                let mut decimal = false;
                if bytes.get(end) == Some(&b'.') {
                    decimal = true;
                    end += 1;
                    while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                        end += 1;
                    }
                }
                if bytes
                    .get(end)
                    .is_some_and(|c| is_word_byte(*c) || *c == b'.')
                {
                    return None; // 1e5, 0x1F, 1_000, 1.2.3
                }
                let raw = body.get(i..end)?;
                let word_ok =
                    last_word.is_none_or(|w| VALUE_WORDS.iter().any(|k| w.eq_ignore_ascii_case(k)));
                let cast = body.get(end..)?.trim_start().strip_prefix("::");
                let literal = match (decimal, cast) {
                    // `7::text`: the integer's text, a text parameter (then cast to text,
                    // which leaves it as it is).
                    (false, Some(to)) if casts_to_text(to) => raw
                        .parse::<i64>()
                        .ok()
                        .map(|n| Literal::Text(n.to_string())),
                    (_, Some(_)) => return None, // other casts bind as they cast
                    (true, None) => Some(Literal::Numeric(raw.to_string())),
                    (false, None) => raw.parse::<i64>().ok().map(Literal::Int),
                };
                match literal {
                    Some(l) if zone == Zone::Values && word_ok && value_symbol(last_symbol) => {
                        literals.push(l);
                        text.push('$');
                        text.push_str(&literals.len().to_string());
                    }
                    _ => text.push_str(raw),
                }
                i = end;
                last_word = None;
                last_symbol = Some("0");
            }
            b'$' | b';' | b'\\' => return None,
            b'-' if bytes.get(i + 1) == Some(&b'-') => return None,
            b'/' if bytes.get(i + 1) == Some(&b'*') => return None,
            b'(' | b'[' => {
                // Brackets keep their literals; parentheses take on the zone around
                // them (a subquery's SELECT then starts its own).
                zones.push(if b == b'[' { Zone::Kept } else { zone });
                text.push(b as char);
                i += 1;
                last_word = None;
                last_symbol = Some(if b == b'[' { "[" } else { "(" });
            }
            b')' | b']' => {
                zones.pop();
                if zones.is_empty() {
                    return None;
                }
                text.push(b as char);
                i += 1;
                last_word = None;
                last_symbol = Some(")");
            }
            _ if is_word_byte(b) => {
                let start = i;
                while bytes.get(i).is_some_and(|c| is_word_byte(*c)) {
                    i += 1;
                }
                let word = body.get(start..i)?;
                text.push_str(word);
                let kw = |k: &str| word.eq_ignore_ascii_case(k);
                let new_zone = if ["select", "returning", "limit", "offset", "fetch"]
                    .iter()
                    .any(|k| kw(k))
                    || (before_by && kw("by"))
                {
                    Some(Zone::Kept)
                } else if [
                    "from", "where", "having", "set", "values", "on", "using", "into",
                ]
                .iter()
                .any(|k| kw(k))
                {
                    Some(Zone::Values)
                } else {
                    None
                };
                before_by = kw("group") || kw("order") || kw("partition");
                if let (Some(z), Some(current)) = (new_zone, zones.last_mut()) {
                    *current = z;
                }
                last_word = Some(word);
                last_symbol = None;
            }
            _ if b.is_ascii_whitespace() => {
                text.push(b as char);
                i += 1;
            }
            _ => {
                // An operator or punctuation: the longest run of symbol bytes.
                let start = i;
                while bytes.get(i).is_some_and(|c| is_symbol_byte(*c)) {
                    i += 1;
                }
                if i == start {
                    // A byte of a character outside ASCII: copy the whole character.
                    let ch = body.get(start..)?.chars().next()?;
                    i += ch.len_utf8();
                }
                let symbol = body.get(start..i)?;
                text.push_str(symbol);
                last_word = None;
                last_symbol = Some(symbol);
            }
        }
    }
    if zones.len() != 1 || literals.is_empty() {
        return None;
    }
    Some(Template { text, literals })
}

/// Whether the text after `::` names the type text.
fn casts_to_text(to: &str) -> bool {
    let to = to.trim_start();
    to.get(..4).is_some_and(|t| t.eq_ignore_ascii_case("text"))
        && !to.as_bytes().get(4).is_some_and(|b| is_word_byte(*b))
}

/// Whether a literal after this symbol (None: after a word or at the start) is a value:
/// not a field name after `->`, `->>`, `#>`, `#>>`, nor after a `.` or `::`.
fn value_symbol(symbol: Option<&str>) -> bool {
    match symbol {
        None => true,
        Some(s) => {
            !(s.ends_with("->")
                || s.ends_with("->>")
                || s.contains("#>")
                || s.ends_with('.')
                || s.ends_with("::"))
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn is_symbol_byte(b: u8) -> bool {
    b"+-*/<>=~!@#%^&|`?:.,".contains(&b)
}

/// The text of the quoted token starting at `start` (`'...'` or `"..."`, the quote
/// doubled inside standing for itself) and the index past its closing quote.
fn quoted(bytes: &[u8], start: usize) -> Option<(String, usize)> {
    let quote = *bytes.get(start)?;
    let mut out = Vec::new();
    let mut i = start + 1;
    loop {
        let b = *bytes.get(i)?;
        if b == quote {
            if bytes.get(i + 1) == Some(&quote) {
                out.push(quote);
                i += 2;
                continue;
            }
            return Some((String::from_utf8(out).ok()?, i + 1));
        }
        out.push(b);
        i += 1;
    }
}

/// Whether a prepared template may run in place of its statement: a read that touches a
/// few documents by key or index, an UPDATE or DELETE by key, or an INSERT of VALUES
/// (whose plan no value steers).
pub fn usable(prepared: &Prepared) -> bool {
    if prepared.read_only {
        return prepared.point;
    }
    if prepared.point_write {
        return true;
    }
    match &prepared.statement {
        Some(TissStatement::Sql(s)) => match s.as_ref() {
            ast::Statement::Insert(insert) => insert.source.as_ref().is_some_and(|q| {
                q.with.is_none() && matches!(q.body.as_ref(), ast::SetExpr::Values(_))
            }),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sql: &str) -> Option<(String, Vec<Literal>)> {
        template(sql).map(|t| (t.text, t.literals))
    }

    #[test]
    fn values_become_parameters() {
        assert_eq!(
            t("SELECT brand, price FROM items WHERE id = 42"),
            Some((
                "SELECT brand, price FROM items WHERE id = $1".into(),
                vec![Literal::Int(42)]
            ))
        );
        assert_eq!(
            t("insert into t (a, b, c) values (1, 'it''s', 2.50), (5000000000, 'x', -3);"),
            Some((
                "insert into t (a, b, c) values ($1, $2, $3), ($4, $5, -$6)".into(),
                vec![
                    Literal::Int(1),
                    Literal::Str("it's".into()),
                    Literal::Numeric("2.50".into()),
                    Literal::Int(5_000_000_000),
                    Literal::Str("x".into()),
                    Literal::Int(3),
                ]
            ))
        );
        assert_eq!(
            t("UPDATE t SET n = 5 WHERE k = 'a' AND m LIKE 'b%'").map(|x| x.0),
            Some("UPDATE t SET n = $1 WHERE k = $2 AND m LIKE $3".into())
        );
        assert_eq!(
            t("SELECT v FROM t WHERE c IN (1, 2) AND d = CAST('x' AS text)").map(|x| x.0),
            Some("SELECT v FROM t WHERE c IN ($1, $2) AND d = CAST($3 AS text)".into())
        );
        assert_eq!(
            t("SELECT c2 FROM t1 WHERE t1.c3 = 7").map(|x| x.0),
            Some("SELECT c2 FROM t1 WHERE t1.c3 = $1".into()),
            "digits inside names stay"
        );
    }

    #[test]
    fn an_integer_cast_to_text_is_a_text_parameter() {
        assert_eq!(
            t("SELECT * FROM products WHERE id = 007::text"),
            Some((
                "SELECT * FROM products WHERE id = $1::text".into(),
                vec![Literal::Text("7".into())]
            ))
        );
        assert_eq!(
            t("SELECT w FROM p WHERE brand = 'brand_' || 25 :: TEXT LIMIT 10").map(|x| x.0),
            Some("SELECT w FROM p WHERE brand = $1 || $2 :: TEXT LIMIT 10".into())
        );
    }

    #[test]
    fn a_string_cast_is_a_text_parameter_the_cast_reads() {
        assert_eq!(
            t("INSERT INTO p (id, specs, n) VALUES ('7', '{\"w\": \"1g\"}'::jsonb, '5' :: int)"),
            Some((
                "INSERT INTO p (id, specs, n) VALUES ($1, $2::jsonb, $3 :: int)".into(),
                vec![
                    Literal::Str("7".into()),
                    Literal::Text("{\"w\": \"1g\"}".into()),
                    Literal::Text("5".into()),
                ]
            ))
        );
        assert_eq!(
            t("SELECT '{}'::jsonb, a FROM t WHERE b = 'x'::text LIMIT '3'::int").map(|x| x.0),
            Some("SELECT '{}'::jsonb, a FROM t WHERE b = $1::text LIMIT '3'::int".into()),
            "casts where literals stay stay as written"
        );
    }

    #[test]
    fn literals_that_shape_the_statement_stay() {
        assert_eq!(
            t("SELECT 1, 'a', lower('B') FROM t WHERE x = 2 ORDER BY 1, 2 LIMIT 10 OFFSET 5")
                .map(|x| x.0),
            Some(
                "SELECT 1, 'a', lower('B') FROM t WHERE x = $1 ORDER BY 1, 2 LIMIT 10 OFFSET 5"
                    .into()
            )
        );
        assert_eq!(
            t("SELECT a FROM t WHERE doc->>'brand' = 'b1' AND tags->0 = '\"x\"' AND d > DATE '2024-01-01' GROUP BY a")
                .map(|x| x.0),
            Some("SELECT a FROM t WHERE doc->>'brand' = $1 AND tags->0 = $2 AND d > DATE '2024-01-01' GROUP BY a".into())
        );
        assert_eq!(
            t("SELECT a FROM t WHERE b = (SELECT 5 FROM u WHERE c = 6) AND arr[1] = 2")
                .map(|x| x.0),
            Some("SELECT a FROM t WHERE b = (SELECT 5 FROM u WHERE c = $1) AND arr[1] = $2".into())
        );
        assert_eq!(
            t("INSERT INTO t VALUES (1) RETURNING id, 5").map(|x| x.0),
            Some("INSERT INTO t VALUES ($1) RETURNING id, 5".into())
        );
    }

    #[test]
    fn statements_run_as_written() {
        for sql in [
            "SELECT 1",
            "SELECT a FROM t",
            "CREATE TABLE t (a int DEFAULT 5)",
            "SELECT a FROM t WHERE b = 1; SELECT 2",
            "SELECT a FROM t WHERE b = $1",
            "SELECT a FROM t WHERE b = E'x\\'y'",
            "SELECT a FROM t WHERE b = 1 -- one",
            "SELECT a FROM t /* c */ WHERE b = 1",
            "SELECT a FROM t WHERE b = 1e5",
            "SELECT a FROM t WHERE b = 5::int8",
            "SELECT a FROM t WHERE b = 5.5::text",
            "SELECT a FROM t WHERE b = 5::texts",
            "SELECT a FROM t WHERE b = 'a'\n'b'",
            "SELECT a FROM t WHERE b = 'unterminated",
            "SELECT a FROM t WHERE (b = 1",
            "EXPLAIN SELECT a FROM t WHERE b = 1",
        ] {
            assert_eq!(template(sql), None, "{sql}");
        }
    }
}
