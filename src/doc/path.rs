//! Paths into document values (`specs.dimensions.width_mm`, `tags[0]`): their steps,
//! and how a value is followed along one. A step that is not there (a missing key, an
//! index out of range, a key into a non-object) leads to nothing: SQL sees NULL.

use super::Value;

/// One step of a path into a document value.
#[derive(Clone, Debug, PartialEq)]
pub enum PathStep {
    Key(String),
    /// An array position; negative counts from the end.
    Index(i64),
}

/// The value a path reaches inside `v`, if every step is there.
pub fn follow_path_ref<'v>(mut v: &'v Value, steps: &[PathStep]) -> Option<&'v Value> {
    for step in steps {
        v = match (v, step) {
            (Value::Object(o), PathStep::Key(k)) => o.get(k.as_str())?,
            (Value::Array(a), PathStep::Index(i)) => {
                let len = a.len() as i64;
                let idx = if *i < 0 { len + *i } else { *i };
                if idx < 0 || idx >= len {
                    return None;
                }
                a.get(idx as usize)?
            }
            _ => return None,
        };
    }
    Some(v)
}

/// Follows a path into a document value; missing steps give NULL.
pub fn follow_path(mut v: Value, steps: &[PathStep]) -> Value {
    for step in steps {
        v = match (v, step) {
            (Value::Object(mut o), PathStep::Key(k)) => o.shift_remove(k).unwrap_or(Value::Null),
            (Value::Array(mut a), PathStep::Index(i)) => {
                let len = a.len() as i64;
                let idx = if *i < 0 { len + *i } else { *i };
                if idx >= 0 && idx < len {
                    a.swap_remove(idx as usize)
                } else {
                    Value::Null
                }
            }
            _ => Value::Null,
        };
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Object;

    #[test]
    fn paths_reach_nested_values_or_nothing() {
        let mut inner = Object::default();
        inner.insert("w".into(), Value::Int(3));
        let mut doc = Object::default();
        doc.insert("o".into(), Value::Object(Box::new(inner)));
        doc.insert(
            "a".into(),
            Value::Array(vec![Value::Int(1), Value::String("x".into())]),
        );
        let v = Value::Object(Box::new(doc));
        let key = |k: &str| PathStep::Key(k.into());
        let cases: Vec<(Vec<PathStep>, Option<Value>)> = vec![
            (vec![key("o"), key("w")], Some(Value::Int(3))),
            (
                vec![key("a"), PathStep::Index(-1)],
                Some(Value::String("x".into())),
            ),
            (vec![key("a"), PathStep::Index(2)], None),
            (vec![key("o"), key("w"), key("deeper")], None),
            (vec![key("missing")], None),
        ];
        for (steps, want) in cases {
            assert_eq!(follow_path_ref(&v, &steps).cloned(), want, "{steps:?}");
            assert_eq!(
                follow_path(v.clone(), &steps),
                want.unwrap_or(Value::Null),
                "{steps:?}"
            );
        }
    }
}
