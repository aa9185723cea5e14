//! SQL/PGQ (SQL:2023 property graphs), as syntax only:
//!
//! - `CREATE PROPERTY GRAPH g VERTEX TABLES (...) [EDGE TABLES (...)]` and `DROP
//!   PROPERTY GRAPH [IF EXISTS] g` ([`parse_create`], [`PropertyGraph`]);
//! - `GRAPH_TABLE (g MATCH <pattern> [WHERE <condition>] COLUMNS (<items>))` in FROM.
//!   sqlparser has no grammar for it, so [`rewrite_graph_tables`] first replaces each
//!   one, before parsing, by the table function call `tissdb_graph_table('<its text>')`,
//!   which parses; the engine then reads the text with [`parse_graph_table`].
//!
//! Patterns are a chain `(a IS person)-[e IS knows]->(b IS person)`: vertices in
//! parentheses and edges in brackets, each with an optional variable and `IS label`;
//! `->` or `<-` gives an edge's direction, and `{m,n}` after an edge makes it a path of
//! m to n such edges.

use sqlparser::ast::{Expr, Ident, SelectItem};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::{RECURSION_LIMIT, TissDialect};

/// The name of the table function GRAPH_TABLE becomes.
pub const GRAPH_TABLE_FUNCTION: &str = "tissdb_graph_table";

/// Longest path quantifier upper bound accepted (`{1,n}`).
pub const MAX_PATH_LENGTH: u32 = 64;

/// A vertex table of a property graph.
#[derive(Clone, Debug, PartialEq)]
pub struct VertexTable {
    pub table: String,
    /// The key column (default `id`).
    pub key: String,
    pub label: String,
}

/// An edge table: each row links the vertex whose key is `source_key` in
/// `source_table` to the one whose key is `destination_key` in `destination_table`.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeTable {
    pub table: String,
    pub label: String,
    pub source_key: String,
    pub source_table: String,
    pub source_ref: String,
    pub destination_key: String,
    pub destination_table: String,
    pub destination_ref: String,
}

/// `CREATE PROPERTY GRAPH`.
#[derive(Clone, Debug, PartialEq)]
pub struct PropertyGraph {
    pub name: String,
    pub vertices: Vec<VertexTable>,
    pub edges: Vec<EdgeTable>,
}

/// One vertex of a pattern.
#[derive(Clone, Debug, PartialEq)]
pub struct VertexPattern {
    pub variable: Option<String>,
    pub label: Option<String>,
}

/// One edge of a pattern, between the vertices before and after it.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgePattern {
    pub variable: Option<String>,
    pub label: Option<String>,
    /// True for `-[]->` (from the vertex before to the one after), false for `<-[]-`.
    pub forward: bool,
    /// `{min,max}`: a path of min to max such edges.
    pub quantifier: Option<(u32, u32)>,
}

/// `GRAPH_TABLE (g MATCH ... WHERE ... COLUMNS (...))`.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphTable {
    pub graph: String,
    /// `vertices.len() == edges.len() + 1`: vertex, edge, vertex, ...
    pub vertices: Vec<VertexPattern>,
    pub edges: Vec<EdgePattern>,
    pub condition: Option<Expr>,
    pub columns: Vec<SelectItem>,
}

fn ident_name(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

fn is_word(parser: &Parser<'_>, word: &str) -> bool {
    matches!(&parser.peek_token().token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn expect_word(parser: &mut Parser<'_>, word: &str) -> Result<(), ParserError> {
    if is_word(parser, word) {
        parser.next_token();
        Ok(())
    } else {
        parser.expected(word, parser.peek_token())
    }
}

fn paren_ident(parser: &mut Parser<'_>) -> Result<String, ParserError> {
    parser.expect_token(&Token::LParen)?;
    let i = ident_name(&parser.parse_identifier()?);
    if parser.consume_token(&Token::Comma) {
        return Err(ParserError::ParserError(
            "multi-column graph keys are not supported".into(),
        ));
    }
    parser.expect_token(&Token::RParen)?;
    Ok(i)
}

/// Skips `PROPERTIES (...)`, `PROPERTIES ARE ALL COLUMNS` or `NO PROPERTIES` (every
/// column is a property).
fn skip_properties(parser: &mut Parser<'_>) -> Result<(), ParserError> {
    if is_word(parser, "NO") {
        parser.next_token();
        return expect_word(parser, "PROPERTIES");
    }
    if !is_word(parser, "PROPERTIES") {
        return Ok(());
    }
    parser.next_token();
    if is_word(parser, "ARE") {
        parser.next_token();
        expect_word(parser, "ALL")?;
        return expect_word(parser, "COLUMNS");
    }
    parser.expect_token(&Token::LParen)?;
    let mut depth = 1;
    while depth > 0 {
        match parser.next_token().token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::EOF => return parser.expected(")", parser.peek_token()),
            _ => {}
        }
    }
    Ok(())
}

/// Parses what follows `CREATE PROPERTY GRAPH`.
pub fn parse_create(parser: &mut Parser<'_>) -> Result<PropertyGraph, ParserError> {
    let name = ident_name(&parser.parse_identifier()?);
    expect_word(parser, "VERTEX")?;
    expect_word(parser, "TABLES")?;
    parser.expect_token(&Token::LParen)?;
    let mut vertices = Vec::new();
    loop {
        let table = ident_name(&parser.parse_identifier()?);
        let mut key = "id".to_string();
        let mut label = table.clone();
        loop {
            if is_word(parser, "KEY") {
                parser.next_token();
                key = paren_ident(parser)?;
            } else if is_word(parser, "LABEL") {
                parser.next_token();
                label = ident_name(&parser.parse_identifier()?);
            } else if is_word(parser, "PROPERTIES") || is_word(parser, "NO") {
                skip_properties(parser)?;
            } else {
                break;
            }
        }
        vertices.push(VertexTable { table, key, label });
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen)?;
    let mut edges = Vec::new();
    if is_word(parser, "EDGE") {
        parser.next_token();
        expect_word(parser, "TABLES")?;
        parser.expect_token(&Token::LParen)?;
        loop {
            let table = ident_name(&parser.parse_identifier()?);
            let mut label = table.clone();
            if is_word(parser, "KEY") {
                parser.next_token();
                paren_ident(parser)?;
            }
            expect_word(parser, "SOURCE")?;
            expect_word(parser, "KEY")?;
            let source_key = paren_ident(parser)?;
            parser.expect_keyword(Keyword::REFERENCES)?;
            let source_table = ident_name(&parser.parse_identifier()?);
            let source_ref = paren_ident(parser)?;
            expect_word(parser, "DESTINATION")?;
            expect_word(parser, "KEY")?;
            let destination_key = paren_ident(parser)?;
            parser.expect_keyword(Keyword::REFERENCES)?;
            let destination_table = ident_name(&parser.parse_identifier()?);
            let destination_ref = paren_ident(parser)?;
            loop {
                if is_word(parser, "LABEL") {
                    parser.next_token();
                    label = ident_name(&parser.parse_identifier()?);
                } else if is_word(parser, "PROPERTIES") || is_word(parser, "NO") {
                    skip_properties(parser)?;
                } else {
                    break;
                }
            }
            edges.push(EdgeTable {
                table,
                label,
                source_key,
                source_table,
                source_ref,
                destination_key,
                destination_table,
                destination_ref,
            });
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        parser.expect_token(&Token::RParen)?;
    }
    Ok(PropertyGraph {
        name,
        vertices,
        edges,
    })
}

/// Replaces every `GRAPH_TABLE ( ... )` of `sql` by `tissdb_graph_table('...')` (see the
/// module doc); other text is kept as it is.
pub fn rewrite_graph_tables(sql: &str) -> Result<String, ParserError> {
    if !sql.to_ascii_lowercase().contains("graph_table") {
        return Ok(sql.to_string());
    }
    let dialect = TissDialect::default();
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| ParserError::TokenizerError(e.to_string()))?;
    let mut out = String::with_capacity(sql.len() + 32);
    let mut i = 0;
    while let Some(t) = tokens.get(i) {
        let is_graph_table = matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("GRAPH_TABLE"));
        let open = tokens
            .iter()
            .skip(i + 1)
            .position(|t| !matches!(t, Token::Whitespace(_)))
            .map(|p| p + i + 1);
        if is_graph_table
            && let Some(open) = open.filter(|o| tokens.get(*o) == Some(&Token::LParen))
        {
            let mut depth = 0;
            let mut inner = String::new();
            let mut j = open;
            loop {
                let Some(t) = tokens.get(j) else {
                    return Err(ParserError::ParserError(
                        "GRAPH_TABLE ( without its closing parenthesis".into(),
                    ));
                };
                match t {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ => {}
                }
                if j > open && depth > 0 {
                    match t {
                        // Display writes a string's text without doubling its quotes.
                        Token::SingleQuotedString(v) => {
                            inner.push('\'');
                            inner.push_str(&v.replace('\'', "''"));
                            inner.push('\'');
                        }
                        other => inner.push_str(&other.to_string()),
                    }
                }
                j += 1;
                if depth == 0 {
                    break;
                }
            }
            out.push_str(GRAPH_TABLE_FUNCTION);
            out.push_str("('");
            out.push_str(&inner.replace('\'', "''"));
            out.push_str("')");
            i = j;
            continue;
        }
        out.push_str(&t.to_string());
        i += 1;
    }
    Ok(out)
}

fn label_and_variable(
    parser: &mut Parser<'_>,
    close: &Token,
) -> Result<(Option<String>, Option<String>), ParserError> {
    let mut variable = None;
    let mut label = None;
    if parser.peek_token().token != *close && !parser.parse_keyword(Keyword::IS) {
        variable = Some(ident_name(&parser.parse_identifier()?));
        if parser.parse_keyword(Keyword::IS) {
            label = Some(ident_name(&parser.parse_identifier()?));
        }
    } else if parser.peek_token().token != *close {
        // `(IS label)` after the IS just consumed.
        label = Some(ident_name(&parser.parse_identifier()?));
    }
    parser.expect_token(close)?;
    Ok((variable, label))
}

fn vertex(parser: &mut Parser<'_>) -> Result<VertexPattern, ParserError> {
    parser.expect_token(&Token::LParen)?;
    let (variable, label) = label_and_variable(parser, &Token::RParen)?;
    Ok(VertexPattern { variable, label })
}

/// An edge, after the vertex before it: `-[...]->`, `<-[...]-`, `->` or `<-`, then an
/// optional `{m,n}`. None when no edge follows.
fn edge(parser: &mut Parser<'_>) -> Result<Option<EdgePattern>, ParserError> {
    let forward = match parser.peek_token().token {
        Token::Minus => true,
        Token::Lt => false,
        Token::Arrow => {
            parser.next_token();
            return Ok(Some(EdgePattern {
                variable: None,
                label: None,
                forward: true,
                quantifier: quantifier(parser)?,
            }));
        }
        _ => return Ok(None),
    };
    parser.next_token();
    if !forward {
        parser.expect_token(&Token::Minus)?;
    }
    let (variable, label) = if parser.consume_token(&Token::LBracket) {
        label_and_variable(parser, &Token::RBracket)?
    } else {
        (None, None)
    };
    if forward {
        if !parser.consume_token(&Token::Arrow) {
            return Err(ParserError::ParserError(
                "an edge pattern needs a direction: -[...]-> or <-[...]-".into(),
            ));
        }
    } else {
        parser.expect_token(&Token::Minus)?;
    }
    Ok(Some(EdgePattern {
        variable,
        label,
        forward,
        quantifier: quantifier(parser)?,
    }))
}

fn quantifier(parser: &mut Parser<'_>) -> Result<Option<(u32, u32)>, ParserError> {
    if !parser.consume_token(&Token::LBrace) {
        return Ok(None);
    }
    let number = |parser: &mut Parser<'_>| -> Result<u32, ParserError> {
        match parser.next_token().token {
            Token::Number(n, _) => n
                .parse()
                .map_err(|_| ParserError::ParserError(format!("bad path length {n}"))),
            other => Err(ParserError::ParserError(format!(
                "expected a path length, found {other}"
            ))),
        }
    };
    let min = number(parser)?;
    let max = if parser.consume_token(&Token::Comma) {
        number(parser)?
    } else {
        min
    };
    parser.expect_token(&Token::RBrace)?;
    if min > max || max > MAX_PATH_LENGTH {
        return Err(ParserError::ParserError(format!(
            "path quantifier {{{min},{max}}} must have min <= max <= {MAX_PATH_LENGTH}"
        )));
    }
    Ok(Some((min, max)))
}

/// Parses the text inside `GRAPH_TABLE ( ... )`.
pub fn parse_graph_table(text: &str) -> Result<GraphTable, ParserError> {
    let dialect = TissDialect::default();
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(text)?;
    let graph = ident_name(&parser.parse_identifier()?);
    expect_word(&mut parser, "MATCH")?;
    let mut vertices = vec![vertex(&mut parser)?];
    let mut edges = Vec::new();
    while let Some(e) = edge(&mut parser)? {
        edges.push(e);
        vertices.push(vertex(&mut parser)?);
    }
    let condition = if parser.parse_keyword(Keyword::WHERE) {
        Some(parser.parse_expr()?)
    } else {
        None
    };
    expect_word(&mut parser, "COLUMNS")?;
    parser.expect_token(&Token::LParen)?;
    let columns = parser.parse_comma_separated(Parser::parse_select_item)?;
    parser.expect_token(&Token::RParen)?;
    if parser.peek_token().token != Token::EOF {
        return parser.expected("end of GRAPH_TABLE", parser.peek_token());
    }
    Ok(GraphTable {
        graph,
        vertices,
        edges,
        condition,
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_table_is_rewritten_to_a_table_function() {
        let sql = "SELECT * FROM GRAPH_TABLE (g MATCH (a IS person)-[e IS knows]->(b) WHERE a.name = 'o''x' COLUMNS (a.name)) AS t";
        let out = rewrite_graph_tables(sql).unwrap();
        assert_eq!(
            out,
            "SELECT * FROM tissdb_graph_table('g MATCH (a IS person)-[e IS knows]->(b) WHERE a.name = ''o''''x'' COLUMNS (a.name)') AS t"
        );
        assert_eq!(
            rewrite_graph_tables("SELECT 'graph_table'").unwrap(),
            "SELECT 'graph_table'"
        );
    }

    #[test]
    fn patterns_parse() {
        let g = parse_graph_table(
            "social MATCH (a IS person)-[e IS knows]->{1,3}(b IS person)<-[IS likes]-(c) WHERE a.id = 1 COLUMNS (a.name AS x, c.id)",
        )
        .unwrap();
        assert_eq!(g.graph, "social");
        assert_eq!(g.vertices.len(), 3);
        assert_eq!(g.edges[0].quantifier, Some((1, 3)));
        assert!(g.edges[0].forward);
        assert!(!g.edges[1].forward);
        assert_eq!(g.edges[1].label.as_deref(), Some("likes"));
        assert_eq!(g.vertices[2].variable.as_deref(), Some("c"));
        assert_eq!(g.columns.len(), 2);
        assert!(parse_graph_table("g MATCH (a)-[e]-(b) COLUMNS (a.id)").is_err());
        assert!(parse_graph_table("g MATCH (a)-[e]->{1,999}(b) COLUMNS (a.id)").is_err());
    }

    #[test]
    fn create_property_graph_parses() {
        let dialect = TissDialect::default();
        let mut p = Parser::new(&dialect)
            .try_with_sql("social VERTEX TABLES (person KEY (pid) LABEL human PROPERTIES (name)) EDGE TABLES (knows SOURCE KEY (src) REFERENCES person (pid) DESTINATION KEY (dst) REFERENCES person (pid))")
            .unwrap();
        let g = parse_create(&mut p).unwrap();
        assert_eq!(g.vertices[0].key, "pid");
        assert_eq!(g.vertices[0].label, "human");
        assert_eq!(g.edges[0].label, "knows");
        assert_eq!(g.edges[0].destination_key, "dst");
    }
}
