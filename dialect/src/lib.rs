//! TissQL: the SQL dialect of TissDB, text to AST only.
//!
//! TissQL is PostgreSQL's grammar as sqlparser knows it — [`TissDialect`] reports itself
//! as the PostgreSQL dialect, so every PostgreSQL-gated rule of the parser applies, and
//! delegates every hook to it — plus TissQL's own statements, recognised before the
//! PostgreSQL parser sees them:
//!
//! - `CREATE COLLECTION [IF NOT EXISTS] name` — a schemaless collection;
//! - `DROP COLLECTION [IF EXISTS] name`;
//! - `CREATE PROPERTY GRAPH` / `DROP PROPERTY GRAPH`, and `GRAPH_TABLE` in FROM (see
//!   [`graph`]).
//!
//! [`parse`] splits a string into statements; each is a [`TissStatement`].

pub mod graph;

use std::any::TypeId;

pub use sqlparser;
use sqlparser::ast::{Expr, ObjectName, Statement};
use sqlparser::dialect::{BindPlaceholderStyle, Dialect, PostgreSqlDialect, Precedence};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;

/// Deepest expression nesting the parser follows before it reports an error.
pub const RECURSION_LIMIT: usize = 200;

/// The TissQL dialect: PostgreSQL, reported as such to the parser.
#[derive(Debug, Default, Clone, Copy)]
pub struct TissDialect {
    inner: PostgreSqlDialect,
}

impl Dialect for TissDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<PostgreSqlDialect>()
    }

    fn supports_cte_materialization(&self) -> bool {
        self.inner.supports_cte_materialization()
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.inner.identifier_quote_style(identifier)
    }

    fn ordered_bind_placeholder_style(&self) -> Option<BindPlaceholderStyle> {
        self.inner.ordered_bind_placeholder_style()
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.inner.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        self.inner.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.inner.is_identifier_part(ch)
    }

    fn supports_unicode_string_literal(&self) -> bool {
        self.inner.supports_unicode_string_literal()
    }

    fn is_reserved_for_identifier(&self, kw: Keyword) -> bool {
        self.inner.is_reserved_for_identifier(kw)
    }

    fn is_table_alias(&self, kw: &Keyword, parser: &mut Parser) -> bool {
        self.inner.is_table_alias(kw, parser)
    }

    fn supports_string_literal_column_alias(&self, explicit: bool) -> bool {
        self.inner.supports_string_literal_column_alias(explicit)
    }

    fn supports_string_literal_table_alias(&self, explicit: bool) -> bool {
        self.inner.supports_string_literal_table_alias(explicit)
    }

    fn is_custom_operator_part(&self, ch: char) -> bool {
        self.inner.is_custom_operator_part(ch)
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        self.inner.get_next_precedence(parser)
    }

    /// A string or number literal is read as a value at once. The parser's own rule
    /// for an expression's start first tries the token as a type name (for `DATE
    /// '2020-01-01'`), which no literal can begin, and builds and drops an error
    /// message quoting the token every time: 5.6% of the server's samples when loading
    /// nested documents by multi-row INSERT. The value is what that rule gives after.
    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        match parser.peek_token_ref().token {
            Token::SingleQuotedString(_) | Token::Number(..) => {
                Some(parser.parse_value().map(Expr::Value))
            }
            _ => self.inner.parse_prefix(parser),
        }
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        self.inner.supports_filter_during_aggregation()
    }

    fn supports_group_by_expr(&self) -> bool {
        self.inner.supports_group_by_expr()
    }

    fn supports_drop_group(&self) -> bool {
        self.inner.supports_drop_group()
    }

    fn supports_alter_user_as_alter_role(&self) -> bool {
        self.inner.supports_alter_user_as_alter_role()
    }

    fn supports_create_group(&self) -> bool {
        self.inner.supports_create_group()
    }

    fn supports_create_role_if_not_exists(&self) -> bool {
        self.inner.supports_create_role_if_not_exists()
    }

    fn prec_value(&self, prec: Precedence) -> u8 {
        self.inner.prec_value(prec)
    }

    fn allow_extract_custom(&self) -> bool {
        self.inner.allow_extract_custom()
    }

    fn allow_extract_single_quotes(&self) -> bool {
        self.inner.allow_extract_single_quotes()
    }

    fn supports_create_index_with_clause(&self) -> bool {
        self.inner.supports_create_index_with_clause()
    }

    fn supports_sql_option_without_value(&self) -> bool {
        self.inner.supports_sql_option_without_value()
    }

    fn supports_explain_with_utility_options(&self) -> bool {
        self.inner.supports_explain_with_utility_options()
    }

    fn supports_listen_notify(&self) -> bool {
        self.inner.supports_listen_notify()
    }

    fn supports_exclude_constraint(&self) -> bool {
        self.inner.supports_exclude_constraint()
    }

    fn supports_factorial_operator(&self) -> bool {
        self.inner.supports_factorial_operator()
    }

    fn supports_bitwise_shift_operators(&self) -> bool {
        self.inner.supports_bitwise_shift_operators()
    }

    fn supports_tilde_like_match_operator(&self) -> bool {
        self.inner.supports_tilde_like_match_operator()
    }

    fn supports_comparison_in_between_low_bound(&self) -> bool {
        self.inner.supports_comparison_in_between_low_bound()
    }

    fn supports_comment_on(&self) -> bool {
        self.inner.supports_comment_on()
    }

    fn supports_load_extension(&self) -> bool {
        self.inner.supports_load_extension()
    }

    fn supports_named_fn_args_with_colon_operator(&self) -> bool {
        self.inner.supports_named_fn_args_with_colon_operator()
    }

    fn supports_named_fn_args_with_expr_name(&self) -> bool {
        self.inner.supports_named_fn_args_with_expr_name()
    }

    fn supports_named_fn_args_with_assignment_operator(&self) -> bool {
        self.inner.supports_named_fn_args_with_assignment_operator()
    }

    fn supports_empty_projections(&self) -> bool {
        self.inner.supports_empty_projections()
    }

    fn supports_nested_comments(&self) -> bool {
        self.inner.supports_nested_comments()
    }

    fn supports_copy_from_stdin_data(&self) -> bool {
        self.inner.supports_copy_from_stdin_data()
    }

    fn supports_string_escape_constant(&self) -> bool {
        self.inner.supports_string_escape_constant()
    }

    fn supports_numeric_literal_underscores(&self) -> bool {
        self.inner.supports_numeric_literal_underscores()
    }

    fn supports_non_decimal_integer_literals(&self) -> bool {
        self.inner.supports_non_decimal_integer_literals()
    }

    fn supports_array_typedef_with_brackets(&self) -> bool {
        self.inner.supports_array_typedef_with_brackets()
    }

    fn supports_geometric_types(&self) -> bool {
        self.inner.supports_geometric_types()
    }

    fn supports_order_by_using_operator(&self) -> bool {
        self.inner.supports_order_by_using_operator()
    }

    fn supports_set_names(&self) -> bool {
        self.inner.supports_set_names()
    }

    fn supports_alter_column_type_using(&self) -> bool {
        self.inner.supports_alter_column_type_using()
    }

    fn supports_left_associative_joins_without_parens(&self) -> bool {
        self.inner.supports_left_associative_joins_without_parens()
    }

    fn supports_notnull_operator(&self) -> bool {
        self.inner.supports_notnull_operator()
    }

    fn supports_interval_options(&self) -> bool {
        self.inner.supports_interval_options()
    }

    fn is_interval_qualifier(&self, kw: Keyword) -> bool {
        self.inner.is_interval_qualifier(kw)
    }

    fn supports_insert_table_alias(&self) -> bool {
        self.inner.supports_insert_table_alias()
    }

    fn supports_create_table_like_parenthesized(&self) -> bool {
        self.inner.supports_create_table_like_parenthesized()
    }

    fn supports_select_wildcard_with_alias(&self) -> bool {
        self.inner.supports_select_wildcard_with_alias()
    }

    fn supports_comma_separated_trim(&self) -> bool {
        self.inner.supports_comma_separated_trim()
    }

    fn supports_xml_expressions(&self) -> bool {
        self.inner.supports_xml_expressions()
    }

    fn is_custom_type_typed_string(&self, first_keyword: Keyword, qualified: bool) -> bool {
        self.inner
            .is_custom_type_typed_string(first_keyword, qualified)
    }

    fn supports_aliased_function_args(&self) -> bool {
        self.inner.supports_aliased_function_args()
    }

    fn supports_comment_optimizer_hint(&self) -> bool {
        self.inner.supports_comment_optimizer_hint()
    }

    fn supports_add_column_if_not_exists(&self) -> bool {
        self.inner.supports_add_column_if_not_exists()
    }

    fn supports_attach_partition_of(&self) -> bool {
        self.inner.supports_attach_partition_of()
    }

    fn supports_detach_partition_of(&self) -> bool {
        self.inner.supports_detach_partition_of()
    }

    fn supports_table_inheritance_markers(&self) -> bool {
        self.inner.supports_table_inheritance_markers()
    }

    fn supports_column_generic_options(&self) -> bool {
        self.inner.supports_column_generic_options()
    }
}

/// A parsed TissQL statement.
#[derive(Clone, Debug, PartialEq)]
pub enum TissStatement {
    /// A statement of PostgreSQL's grammar.
    Sql(Box<Statement>),
    /// `CREATE COLLECTION [IF NOT EXISTS] name`.
    CreateCollection {
        name: ObjectName,
        if_not_exists: bool,
    },
    /// `DROP COLLECTION [IF EXISTS] name`.
    DropCollection { name: ObjectName, if_exists: bool },
    /// `CREATE PROPERTY GRAPH ...`, with its text (stored as the definition).
    CreatePropertyGraph {
        graph: graph::PropertyGraph,
        text: String,
    },
    /// `DROP PROPERTY GRAPH [IF EXISTS] name`.
    DropPropertyGraph { name: String, if_exists: bool },
}

fn is_word(parser: &Parser<'_>, n: usize, word: &str) -> bool {
    match &parser.peek_nth_token(n).token {
        Token::Word(w) => w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word),
        _ => false,
    }
}

/// Parses every statement of `sql` (separated by semicolons). An empty string, or one
/// of only semicolons and comments, gives an empty list.
pub fn parse(sql: &str) -> Result<Vec<TissStatement>, ParserError> {
    let sql = graph::rewrite_graph_tables(sql)?;
    let dialect = TissDialect::default();
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(&sql)?;
    let mut statements = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            break;
        }
        let statement = if is_word(&parser, 0, "CREATE") && is_word(&parser, 1, "COLLECTION") {
            parser.next_token();
            parser.next_token();
            let if_not_exists =
                parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
            let name = parser.parse_object_name(false)?;
            TissStatement::CreateCollection {
                name,
                if_not_exists,
            }
        } else if is_word(&parser, 0, "DROP") && is_word(&parser, 1, "COLLECTION") {
            parser.next_token();
            parser.next_token();
            let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let name = parser.parse_object_name(false)?;
            TissStatement::DropCollection { name, if_exists }
        } else if is_word(&parser, 0, "CREATE")
            && is_word(&parser, 1, "PROPERTY")
            && is_word(&parser, 2, "GRAPH")
        {
            let start = parser.peek_token().span.start;
            for _ in 0..3 {
                parser.next_token();
            }
            let graph = graph::parse_create(&mut parser)?;
            let end = parser.peek_token().span.start;
            TissStatement::CreatePropertyGraph {
                graph,
                text: text_between(&sql, start, end),
            }
        } else if is_word(&parser, 0, "DROP")
            && is_word(&parser, 1, "PROPERTY")
            && is_word(&parser, 2, "GRAPH")
        {
            for _ in 0..3 {
                parser.next_token();
            }
            let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let name = parser.parse_identifier()?;
            let name = if name.quote_style.is_some() {
                name.value
            } else {
                name.value.to_lowercase()
            };
            TissStatement::DropPropertyGraph { name, if_exists }
        } else {
            TissStatement::Sql(Box::new(parser.parse_statement()?))
        };
        statements.push(statement);
        let next = parser.peek_token();
        if next.token != Token::EOF && next.token != Token::SemiColon {
            return parser.expected("end of statement", next);
        }
    }
    Ok(statements)
}

/// The text of `sql` from `start` up to `end` (line/column locations; an `end` at line 0
/// means the end of the text).
fn text_between(
    sql: &str,
    start: sqlparser::tokenizer::Location,
    end: sqlparser::tokenizer::Location,
) -> String {
    let offset = |loc: sqlparser::tokenizer::Location| -> usize {
        if loc.line == 0 {
            return sql.len();
        }
        let mut line = 1;
        let mut col = 1;
        for (i, ch) in sql.char_indices() {
            if line == loc.line && col == loc.column {
                return i;
            }
            if ch == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
        }
        sql.len()
    };
    let (a, b) = (offset(start), offset(end));
    sql.get(a..b.max(a)).unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tissql_statements_and_postgres_syntax() {
        let stmts = parse(
            "CREATE COLLECTION IF NOT EXISTS products; \
             SELECT name, specs.bluetooth_version FROM products WHERE price < $1 AND doc->>'a' = 'x'; \
             ;; DROP COLLECTION products",
        )
        .unwrap();
        assert_eq!(stmts.len(), 3);
        assert!(matches!(
            &stmts[0],
            TissStatement::CreateCollection {
                if_not_exists: true,
                ..
            }
        ));
        assert!(matches!(&stmts[1], TissStatement::Sql(_)));
        assert!(matches!(
            &stmts[2],
            TissStatement::DropCollection {
                if_exists: false,
                ..
            }
        ));
        assert!(parse("").unwrap().is_empty());
        assert!(parse(" ; -- nothing\n").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse("SELEKT 1").unwrap_err().to_string();
        assert!(e.contains("SELEKT"), "{e}");
        assert!(parse("SELECT 1 2").is_err());
        let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn postgres_gated_syntax_still_parses() {
        for sql in [
            "SELECT '1'::int",
            "SELECT a FROM t WHERE a = ANY(ARRAY[1,2])",
            "INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING RETURNING a",
            "COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER true)",
            "SHOW TRANSACTION ISOLATION LEVEL",
        ] {
            parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}

#[cfg(test)]
mod literal_tests {
    use super::*;

    /// Reading literals at once gives the trees PostgreSQL's dialect gives.
    #[test]
    fn literals_parse_as_postgres_parses_them() {
        for sql in [
            "SELECT 1, -2.5e3, 'a', 'it''s', E'x\\ny', '{\"a\": [1]}'::jsonb, 'x' || 'y'",
            "SELECT DATE '2020-01-01', INTERVAL '1 day', TIMESTAMP '2020-01-01 10:00', BOOL 'true'",
            "INSERT INTO t (a, b, c) VALUES (1, 'two', '[3]'::jsonb), (4.5, NULL, $1)",
            "SELECT * FROM t WHERE a = 'x' AND b IN (1, 2, '3') AND c BETWEEN 1 AND 10 LIMIT 5",
            "SELECT CAST('5' AS int), '5'::numeric(10, 2), ARRAY[1, 2]['1'], 1 + -'2'",
            "SELECT 'a' COLLATE \"C\", 1 IS NULL, 'x' LIKE 'y%' ESCAPE '!', 2 ^ 3",
        ] {
            let ours = Parser::parse_sql(&TissDialect::default(), sql);
            let postgres = Parser::parse_sql(&PostgreSqlDialect {}, sql);
            assert!(postgres.is_ok(), "PG {sql}: {postgres:?}");
            assert!(ours.is_ok(), "{sql}: {ours:?}");
            assert_eq!(format!("{ours:?}"), format!("{postgres:?}"), "{sql}");
        }
        for bad in [
            "SELECT 'a",
            "SELECT 'a' 'b'",
            "SELECT 'a'\n'b'",
            "SELECT 1 2 3",
            "SELECT '1'::",
            "VALUES (1,",
        ] {
            let ours = Parser::parse_sql(&TissDialect::default(), bad);
            let postgres = Parser::parse_sql(&PostgreSqlDialect {}, bad);
            assert!(ours.is_err(), "{bad}");
            assert_eq!(format!("{ours:?}"), format!("{postgres:?}"), "{bad}");
        }
    }
}

#[cfg(test)]
mod deep_tests {
    #[test]
    fn long_concat_chain_parses_within_a_16_mib_stack() {
        let sql = format!("SELECT length({}'a')", "'a' || ".repeat(20_000));
        let handle = std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(move || super::parse(&sql).map(|s| s.len()))
            .unwrap();
        let parsed = handle.join().expect("no stack overflow");
        assert!(parsed.is_ok() || parsed.is_err());
    }
}
