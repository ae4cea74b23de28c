//! Turns chat API parameters (`field[op]=value`, `sort_desc=field`, `limit`, `skip`) into a
//! [`Query`], accepting only the fields each endpoint documents.

use confab_core::query::{Condition, Field, Op, Query, Scalar, Sort};
use confab_core::{Error, ObjectId, Result};
use serde_json::Value;

use crate::params::{ParamExt, Params};

/// How a field's values are read.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    ObjectId,
    Int,
    Text,
    /// Unix seconds, or an ISO 8601 date.
    Time,
}

pub struct FieldSpec {
    pub name: &'static str,
    pub field: Field,
    pub kind: Kind,
}

pub const fn spec(name: &'static str, field: Field, kind: Kind) -> FieldSpec {
    FieldSpec { name, field, kind }
}

fn time_secs(s: &str) -> Option<i64> {
    if let Ok(n) = s.trim().parse::<i64>() {
        return Some(n);
    }
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(t.unix_timestamp())
}

fn scalar(name: &str, kind: Kind, raw: &str) -> Result<Scalar> {
    let bad = || Error::bad_request(format!("invalid value for {name}: {raw:.40}"));
    Ok(match kind {
        Kind::ObjectId => Scalar::Text(
            raw.trim()
                .parse::<ObjectId>()
                .map_err(|_| bad())?
                .to_string(),
        ),
        Kind::Int => Scalar::Int(raw.trim().parse().map_err(|_| bad())?),
        Kind::Text => Scalar::Text(raw.to_string()),
        Kind::Time => Scalar::Int(time_secs(raw).ok_or_else(bad)?),
    })
}

fn condition(name: &str, field: Field, kind: Kind, op: Op, value: &Value) -> Result<Condition> {
    let raw: Vec<String> = if op.is_list() {
        value
            .as_list()
            .ok_or_else(|| Error::bad_request(format!("{name}[...] needs a list")))?
    } else {
        vec![value
            .as_text()
            .ok_or_else(|| Error::bad_request(format!("{name} needs a single value")))?]
    };
    if raw.is_empty() {
        return Err(Error::bad_request(format!("{name} needs a value")));
    }
    if raw.len() > 100 {
        return Err(Error::bad_request(format!("{name}: at most 100 values")));
    }
    // Substring search is on text, whatever the field's type.
    let kind = if op == Op::Ctn { Kind::Text } else { kind };
    let values = raw
        .iter()
        .map(|r| scalar(name, kind, r))
        .collect::<Result<Vec<_>>>()?;
    Ok(Condition { field, op, values })
}

fn conditions_for(
    name: &str,
    field: &Field,
    kind: Kind,
    value: &Value,
    out: &mut Vec<Condition>,
) -> Result<()> {
    match value {
        Value::Object(ops) => {
            for (op_name, v) in ops {
                let op = Op::parse(op_name).ok_or_else(|| {
                    Error::bad_request(format!("unknown operator {name}[{op_name:.20}]"))
                })?;
                out.push(condition(name, field.clone(), kind, op, v)?);
            }
        }
        v => out.push(condition(name, field.clone(), kind, Op::Eq, v)?),
    }
    Ok(())
}

/// Reads filters, sorting and paging. `custom` allows `data[<name>]` filters on dialogs.
pub fn parse_query(
    p: &Params,
    fields: &[FieldSpec],
    sortable: &[&str],
    custom: bool,
    default_limit: u32,
    max_limit: u32,
) -> Result<Query> {
    let mut q = Query {
        limit: p.bounded("limit", default_limit, max_limit)?,
        skip: p.bounded("skip", 0, u32::MAX)?,
        ..Default::default()
    };
    for spec in fields {
        if let Some(v) = p.get(spec.name) {
            conditions_for(spec.name, &spec.field, spec.kind, v, &mut q.conditions)?;
        }
    }
    if custom {
        if let Some(data) = p.get("data") {
            let Value::Object(map) = data else {
                return Err(Error::bad_request(
                    "data filters must be data[<field>]=value",
                ));
            };
            for (name, v) in map {
                if name == "class_name" {
                    continue;
                }
                if name.is_empty()
                    || name.len() > 64
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(Error::bad_request(format!(
                        "invalid custom field name {name:.40}"
                    )));
                }
                let field = Field::Custom(name.clone());
                conditions_for(name, &field, Kind::Text, v, &mut q.conditions)?;
            }
        }
    }
    for (key, desc) in [("sort_asc", false), ("sort_desc", true)] {
        if let Some(name) = p.text(key) {
            if !sortable.contains(&name.as_str()) {
                return Err(Error::bad_request(format!("cannot sort by {name:.40}")));
            }
            let spec = fields
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| Error::bad_request(format!("cannot sort by {name:.40}")))?;
            q.sort = Some(Sort {
                field: spec.field.clone(),
                desc,
            });
        }
    }
    Ok(q)
}

/// Dialog ids from a path segment or a parameter: `a,b` or a list.
pub fn object_ids<T: From<ObjectId>>(raw: &[String], max: usize) -> Result<Vec<T>> {
    if raw.len() > max {
        return Err(Error::bad_request(format!("at most {max} ids")));
    }
    raw.iter()
        .map(|s| s.trim().parse::<ObjectId>().map(T::from))
        .collect()
}

/// The ids of a `/{id1},{id2}` path segment (dialog or message ids, as the caller asks).
pub fn path_ids<T: From<ObjectId>>(segment: &str) -> Result<Vec<T>> {
    let raw: Vec<String> = segment.split(',').map(str::to_string).collect();
    object_ids(&raw, 100)
}
