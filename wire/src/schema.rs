//! What the wire says about types and columns: engine [`SqlType`]s as pgwire [`Type`]s
//! and back (OIDs), [`Column`]s as row-description [`FieldInfo`]s (or a whole
//! [`RowDescription`]), and the format codes a
//! client asked for, read without trusting their count.

use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::data::{FieldDescription, RowDescription};
use tissdb::query::types::RegKind;
use tissdb::query::{Column, SqlType};

use crate::error;

/// OID of `oid`, which some drivers use for catalog parameters.
pub const OID_OID: u32 = 26;
/// OID of `name`.
pub const NAME_OID: u32 = 19;
/// OID of `"char"`.
pub const CHAR_OID: u32 = 18;
/// OID of `bpchar` (`char(n)`).
pub const BPCHAR_OID: u32 = 1042;

/// The engine type for an OID a client declared, if the engine has one. Text-like types
/// the engine lacks (`name`, `bpchar`, `"char"`) are text; `oid` is an integer.
pub fn sql_type_from_oid(oid: u32) -> Option<SqlType> {
    Some(match oid {
        16 => SqlType::Bool,
        17 => SqlType::Bytea,
        20 => SqlType::Int8,
        OID_OID => SqlType::Oid,
        2205 => SqlType::Reg(RegKind::Class),
        2206 => SqlType::Reg(RegKind::Type),
        24 => SqlType::Reg(RegKind::Proc),
        4089 => SqlType::Reg(RegKind::Namespace),
        21 => SqlType::Int2,
        23 => SqlType::Int4,
        25 | NAME_OID | CHAR_OID | BPCHAR_OID => SqlType::Text,
        114 => SqlType::Json,
        700 => SqlType::Float4,
        701 => SqlType::Float8,
        705 => SqlType::Unknown,
        1043 => SqlType::Varchar(None),
        1082 => SqlType::Date,
        1114 => SqlType::Timestamp,
        1184 => SqlType::Timestamptz,
        1700 => SqlType::Numeric,
        2950 => SqlType::Uuid,
        3802 => SqlType::Jsonb,
        // int2vector and oidvector read as arrays.
        22 => SqlType::Int2Vector,
        30 => SqlType::OidVector,
        other => return array_of(other).map(|e| SqlType::Array(Box::new(e))),
    })
}

/// The element type of the array type `oid`, if the engine has it.
pub fn array_of(oid: u32) -> Option<SqlType> {
    let elem = match oid {
        1000 => 16,
        1001 => 17,
        1016 => 20,
        1005 => 21,
        1007 => 23,
        1009 | 1003 | 1002 | 1014 => 25,
        199 => 114,
        1021 => 700,
        1022 => 701,
        1015 => 1043,
        1006 => 22,
        1013 => 30,
        1182 => 1082,
        1115 => 1114,
        1185 => 1184,
        1231 => 1700,
        2951 => 2950,
        3807 => 3802,
        1028 => OID_OID,
        2210 => 2205,
        2211 => 2206,
        1008 => 24,
        4090 => 4089,
        _ => return None,
    };
    sql_type_from_oid(elem)
}

/// The pgwire type of an engine type (every engine type is a PostgreSQL built-in).
pub fn pg_type(ty: &SqlType) -> Type {
    Type::from_oid(ty.oid()).unwrap_or(Type::UNKNOWN)
}

/// The type a parameter is described as: `unknown` becomes `text`, which every driver
/// can bind a string to.
pub fn param_pg_type(ty: &SqlType) -> Type {
    match ty {
        SqlType::Unknown => Type::TEXT,
        other => pg_type(other),
    }
}

/// `pg_type.typlen`: the fixed width of a type, -1 when variable, -2 for C strings.
pub fn type_len(ty: &SqlType) -> i16 {
    match ty {
        SqlType::Bool => 1,
        SqlType::Int2 => 2,
        SqlType::Int4 | SqlType::Float4 | SqlType::Date | SqlType::Oid | SqlType::Reg(_) => 4,
        SqlType::Int8 | SqlType::Float8 | SqlType::Timestamp | SqlType::Timestamptz => 8,
        SqlType::Uuid => 16,
        SqlType::Unknown => -2,
        SqlType::Numeric
        | SqlType::NumericTyped(..)
        | SqlType::Text
        | SqlType::Varchar(_)
        | SqlType::Bytea
        | SqlType::Json
        | SqlType::Jsonb
        | SqlType::Array(_)
        | SqlType::Int2Vector
        | SqlType::OidVector => -1,
    }
}

/// The format of item `i` in a list of format codes (none: all text; one: all alike;
/// else one per item). A short list reads as text rather than panicking; callers check
/// the count first with [`check_format_count`].
pub fn format_at(format: &Format, i: usize) -> FieldFormat {
    match format {
        Format::Individual(codes) => codes
            .get(i)
            .map_or(FieldFormat::Text, |c| FieldFormat::from(*c)),
        other => other.format_for(i),
    }
}

/// Refuses a list of format codes that is neither empty, one code, nor one per item, as
/// PostgreSQL does (08P01).
pub fn check_format_count(format: &Format, items: usize, what: &str) -> PgWireResult<()> {
    if let Format::Individual(codes) = format
        && codes.len() != items
    {
        return Err(error::protocol(format!(
            "bind message has {} {what} formats but there are {items} {what}s",
            codes.len()
        )));
    }
    Ok(())
}

/// The row description of `columns`, each in the format the client asked for (`None`:
/// text, as in a statement Describe).
pub fn fields(columns: &[Column], format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
    if let Some(format) = format {
        check_format_count(format, columns.len(), "result")?;
    }
    Ok(columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let format = format.map_or(FieldFormat::Text, |f| format_at(f, i));
            field(column, format)
        })
        .collect())
}

/// The RowDescription of `columns` in `format`, made straight from the columns: a
/// prepared statement's portal is described at every execution (pgbench, node-postgres
/// and pgjdbc send Describe with each Bind), and going through [`FieldInfo`] copies each
/// name twice. Gives what [`fields`] and pgwire's conversion of it would.
pub fn row_description(columns: &[Column], format: &Format) -> PgWireResult<RowDescription> {
    check_format_count(format, columns.len(), "result")?;
    Ok(RowDescription::new(
        columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                FieldDescription::new(
                    column.name.clone(),
                    column.table_oid as i32,
                    column.column_number,
                    pg_type(&column.ty).oid(),
                    type_len(&column.ty),
                    column.ty.type_modifier(),
                    format_at(format, i).value(),
                )
            })
            .collect(),
    ))
}

/// One column's description.
pub fn field(column: &Column, format: FieldFormat) -> FieldInfo {
    // OIDs are unsigned on the wire but travel as int32; the bits are what matter.
    let table = (column.table_oid != 0).then_some(column.table_oid as i32);
    let number = (column.column_number != 0).then_some(column.column_number);
    FieldInfo::new(
        column.name.clone(),
        table,
        number,
        pg_type(&column.ty),
        format,
    )
    .with_type_modifier(column.ty.type_modifier())
    .with_type_size(type_len(&column.ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_type_round_trips_through_its_oid() {
        for ty in [
            SqlType::Bool,
            SqlType::Int2,
            SqlType::Int4,
            SqlType::Int8,
            SqlType::Float4,
            SqlType::Float8,
            SqlType::Numeric,
            SqlType::Text,
            SqlType::Varchar(None),
            SqlType::Date,
            SqlType::Timestamp,
            SqlType::Timestamptz,
            SqlType::Bytea,
            SqlType::Uuid,
            SqlType::Json,
            SqlType::Jsonb,
            SqlType::Oid,
            SqlType::Reg(RegKind::Class),
            SqlType::Array(Box::new(SqlType::Int4)),
            SqlType::Array(Box::new(SqlType::Text)),
            SqlType::Int2Vector,
            SqlType::OidVector,
            SqlType::Unknown,
        ] {
            assert_eq!(sql_type_from_oid(ty.oid()), Some(ty.clone()));
            assert_eq!(pg_type(&ty).oid(), ty.oid(), "{ty:?}");
        }
        assert_eq!(param_pg_type(&SqlType::Unknown), Type::TEXT);
        // Types the engine lacks: point, interval.
        assert_eq!(sql_type_from_oid(600), None);
        assert_eq!(sql_type_from_oid(1186), None);
    }

    #[test]
    fn fields_carry_table_column_and_modifier() {
        let mut c = Column::new("name", SqlType::Varchar(Some(20)));
        c.table_oid = 16384;
        c.column_number = 2;
        let f = field(&c, FieldFormat::Binary);
        assert_eq!(f.table_id(), Some(16384));
        assert_eq!(f.column_id(), Some(2));
        assert_eq!(f.type_modifier(), 24);
        assert_eq!(f.datatype(), &Type::VARCHAR);
        let plain = field(&Column::new("x", SqlType::Int8), FieldFormat::Text);
        assert_eq!((plain.table_id(), plain.column_id()), (None, None));
        assert_eq!(plain.type_modifier(), -1);
    }

    #[test]
    fn format_counts() {
        let cols = vec![
            Column::new("a", SqlType::Int4),
            Column::new("b", SqlType::Text),
        ];
        let mixed = Format::Individual(vec![1, 0]);
        let f = fields(&cols, Some(&mixed)).unwrap();
        assert_eq!(f[0].format(), FieldFormat::Binary);
        assert_eq!(f[1].format(), FieldFormat::Text);
        assert!(fields(&cols, Some(&Format::Individual(vec![1, 0, 1]))).is_err());
        let all = fields(&cols, Some(&Format::UnifiedBinary)).unwrap();
        assert!(all.iter().all(|f| f.format() == FieldFormat::Binary));
        assert!(
            fields(&cols, None)
                .unwrap()
                .iter()
                .all(|f| f.format() == FieldFormat::Text)
        );
    }
}
