//! GRAPH_TABLE: a property graph pattern match written as the plain SQL it stands for,
//! which the binder then binds like any query.
//!
//! - each vertex of the pattern is its vertex table under the pattern's variable;
//! - each fixed edge is its edge table, joined to the vertices on either side by the
//!   edge's source and destination keys (swapped for `<-[]-`);
//! - each quantified edge `{m,n}` is a recursive union over the edge table that walks
//!   from every vertex of the side it starts from, up to n edges, keeping the
//!   (start, end) pairs of walks of m to n edges — one row per walk, as SQL/PGQ matches
//!   walks. Conditions of WHERE that read only the starting vertex also filter the
//!   walk's first step, so a traversal from one vertex does not walk the whole graph.
//!
//! EXPLAIN of a GRAPH_TABLE query shows the joins and the recursive union it became.

use tissdb_dialect::graph::{EdgePattern, EdgeTable, GraphTable, PropertyGraph, VertexTable};
use tissdb_dialect::sqlparser::ast;

use crate::catalog::Catalog;
use crate::error::{Error, Result, SqlState};

fn unsupported(msg: impl Into<String>) -> Error {
    Error::invalid(SqlState::FEATURE_NOT_SUPPORTED, msg)
}

fn undefined(msg: impl Into<String>) -> Error {
    Error::not_found(SqlState::UNDEFINED_OBJECT, msg)
}

/// A quoted SQL identifier.
fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn vertex_table<'g>(g: &'g PropertyGraph, label: Option<&str>) -> Result<&'g VertexTable> {
    match label {
        Some(l) => g
            .vertices
            .iter()
            .find(|v| v.label == l || v.table == l)
            .ok_or_else(|| {
                undefined(format!(
                    "property graph \"{}\" has no vertex label \"{l}\"",
                    g.name
                ))
            }),
        None => match g.vertices.as_slice() {
            [one] => Ok(one),
            _ => Err(unsupported(format!(
                "a vertex pattern without a label needs a graph with one vertex table; \"{}\" has {}",
                g.name,
                g.vertices.len()
            ))),
        },
    }
}

/// The edge table of `e` between vertex tables `from` and `to` (in pattern order).
fn edge_table<'g>(
    g: &'g PropertyGraph,
    e: &EdgePattern,
    from: &VertexTable,
    to: &VertexTable,
) -> Result<&'g EdgeTable> {
    let connects = |t: &EdgeTable| {
        if e.forward {
            t.source_table == from.table && t.destination_table == to.table
        } else {
            t.source_table == to.table && t.destination_table == from.table
        }
    };
    let found = match &e.label {
        Some(l) => {
            let t = g
                .edges
                .iter()
                .find(|t| t.label == *l || t.table == *l)
                .ok_or_else(|| {
                    undefined(format!(
                        "property graph \"{}\" has no edge label \"{l}\"",
                        g.name
                    ))
                })?;
            if !connects(t) {
                return Err(undefined(format!(
                    "edge label \"{l}\" does not connect \"{}\" to \"{}\" in that direction",
                    from.label, to.label
                )));
            }
            t
        }
        None => {
            let mut fits = g.edges.iter().filter(|t| connects(t));
            match (fits.next(), fits.next()) {
                (Some(t), None) => t,
                (None, _) => {
                    return Err(undefined(format!(
                        "no edge table connects \"{}\" to \"{}\" in that direction",
                        from.label, to.label
                    )));
                }
                _ => {
                    return Err(unsupported(
                        "several edge tables fit an edge pattern without a label; give it one",
                    ));
                }
            }
        }
    };
    Ok(found)
}

/// The variables an expression names as `var.column` (the first part of compound
/// identifiers).
fn variables(e: &ast::Expr) -> Vec<String> {
    let text = e.to_string();
    let mut out = Vec::new();
    let dialect = tissdb_dialect::TissDialect::default();
    let Ok(tokens) =
        tissdb_dialect::sqlparser::tokenizer::Tokenizer::new(&dialect, &text).tokenize()
    else {
        return out;
    };
    use tissdb_dialect::sqlparser::tokenizer::Token;
    let significant: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    for w in significant.windows(2) {
        if let (Token::Word(word), Token::Period) = (w[0], w[1]) {
            let name = if word.quote_style.is_some() {
                word.value.clone()
            } else {
                word.value.to_lowercase()
            };
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// The ANDed parts of an expression.
fn conjuncts(e: &ast::Expr, out: &mut Vec<ast::Expr>) {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        ast::Expr::Nested(inner)
            if matches!(
                **inner,
                ast::Expr::BinaryOp {
                    op: ast::BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(inner, out)
        }
        other => out.push(other.clone()),
    }
}

/// The SQL query a GRAPH_TABLE stands for (see the module doc).
pub fn graph_table_sql(catalog: &Catalog, text: &str) -> Result<String> {
    let gt: GraphTable =
        tissdb_dialect::graph::parse_graph_table(text).map_err(|e| Error::Syntax {
            message: format!("in GRAPH_TABLE: {e}"),
            position: None,
        })?;
    let g = catalog.graph(&gt.graph)?;
    let vertex_tables: Vec<&VertexTable> = gt
        .vertices
        .iter()
        .map(|v| vertex_table(&g, v.label.as_deref()))
        .collect::<Result<_>>()?;
    let vars: Vec<String> = gt
        .vertices
        .iter()
        .enumerate()
        .map(|(i, v)| v.variable.clone().unwrap_or_else(|| format!("_v{i}")))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for v in &vars {
        if !seen.insert(v.clone()) {
            return Err(unsupported(format!(
                "the variable \"{v}\" names two vertices of the pattern; cycles in a pattern are not supported"
            )));
        }
    }
    let mut where_parts: Vec<ast::Expr> = Vec::new();
    if let Some(c) = &gt.condition {
        conjuncts(c, &mut where_parts);
    }
    let mut from: Vec<String> = vars
        .iter()
        .zip(&vertex_tables)
        .map(|(var, t)| format!("{} AS {}", q(&t.table), q(var)))
        .collect();
    let mut conditions: Vec<String> = Vec::new();
    for (j, e) in gt.edges.iter().enumerate() {
        let (prev, next) = (&vars[j], &vars[j + 1]);
        let (from_v, to_v) = (vertex_tables[j], vertex_tables[j + 1]);
        let t = edge_table(&g, e, from_v, to_v)?;
        let evar = e.variable.clone().unwrap_or_else(|| format!("_e{j}"));
        if vars.contains(&evar) || !seen.insert(evar.clone()) {
            return Err(unsupported(format!(
                "the variable \"{evar}\" is used twice in the pattern"
            )));
        }
        // Keys in walk order: from the vertex before the edge to the one after it.
        let (from_key, from_ref, to_key, to_ref) = if e.forward {
            (
                &t.source_key,
                &t.source_ref,
                &t.destination_key,
                &t.destination_ref,
            )
        } else {
            (
                &t.destination_key,
                &t.destination_ref,
                &t.source_key,
                &t.source_ref,
            )
        };
        match e.quantifier {
            None => {
                from.push(format!("{} AS {}", q(&t.table), q(&evar)));
                conditions.push(format!(
                    "{}.{} = {}.{}",
                    q(&evar),
                    q(from_key),
                    q(prev),
                    q(from_ref)
                ));
                conditions.push(format!(
                    "{}.{} = {}.{}",
                    q(&evar),
                    q(to_key),
                    q(next),
                    q(to_ref)
                ));
            }
            Some((min, max)) => {
                // Conditions on the starting vertex alone seed the walk.
                let seed: Vec<String> = where_parts
                    .iter()
                    .filter(|p| {
                        let v = variables(p);
                        !v.is_empty() && v.iter().all(|x| x == prev)
                    })
                    .map(|p| p.to_string())
                    .collect();
                let seed_where = if seed.is_empty() {
                    String::new()
                } else {
                    format!(" WHERE {}", seed.join(" AND "))
                };
                let p = format!("_p{j}");
                from.push(format!(
                    "(WITH RECURSIVE {p}(walk_start, walk_end, hops) AS (\
                     SELECT {prev_q}.{from_ref}, {prev_q}.{from_ref}, 0 FROM {from_table} AS {prev_q}{seed_where} \
                     UNION ALL \
                     SELECT w.walk_start, k.{to_key}, w.hops + 1 FROM {p} AS w JOIN {edge} AS k ON k.{from_key} = w.walk_end WHERE w.hops < {max}) \
                     SELECT walk_start, walk_end FROM {p} WHERE hops >= {min}) AS {evar_q}",
                    prev_q = q(prev),
                    from_ref = q(from_ref),
                    from_table = q(&from_v.table),
                    to_key = q(to_key),
                    edge = q(&t.table),
                    from_key = q(from_key),
                    evar_q = q(&evar),
                ));
                conditions.push(format!(
                    "{}.walk_start = {}.{}",
                    q(&evar),
                    q(prev),
                    q(from_ref)
                ));
                conditions.push(format!("{}.walk_end = {}.{}", q(&evar), q(next), q(to_ref)));
            }
        }
    }
    conditions.extend(where_parts.iter().map(|p| format!("({p})")));
    let columns: Vec<String> = gt.columns.iter().map(|c| c.to_string()).collect();
    let mut sql = format!("SELECT {} FROM {}", columns.join(", "), from.join(", "));
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    Ok(sql)
}
