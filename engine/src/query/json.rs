//! Small helpers for reading query JSON with errors that name the offending field by path.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::schema::json_type;

/// A JSON object being read, with its path for error messages (e.g. `aggregations[2]`).
#[derive(Debug, Clone, Copy)]
pub struct Obj<'a> {
    /// The object.
    pub map: &'a Map<String, Value>,
    /// Its JSON path.
    pub path: &'a str,
}

impl<'a> Obj<'a> {
    /// View `v` as an object or fail naming `path`.
    pub fn new(v: &'a Value, path: &'a str) -> Result<Obj<'a>> {
        match v {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(Error::invalid(format!(
                "{path}: expected an object, found {}",
                json_type(other)
            ))),
        }
    }

    /// The path of a child field.
    pub fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Reject fields not in `known`.
    pub fn check_known(&self, known: &[&str]) -> Result<()> {
        for k in self.map.keys() {
            if !known.contains(&k.as_str()) {
                return Err(Error::invalid(format!(
                    "{}: unknown field (expected one of: {})",
                    self.child(k),
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// A field that may be absent or null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// A required string.
    pub fn req_str(&self, key: &str) -> Result<&'a str> {
        match self.map.get(key) {
            Some(Value::String(s)) => Ok(s),
            None | Some(Value::Null) => Err(Error::invalid(format!(
                "{}: required field is missing",
                self.child(key)
            ))),
            Some(other) => Err(Error::invalid(format!(
                "{}: expected a string, found {}",
                self.child(key),
                json_type(other)
            ))),
        }
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Error::invalid(format!(
                "{}: expected a string, found {}",
                self.child(key),
                json_type(other)
            ))),
        }
    }

    /// An optional boolean (also accepts "true"/"false" strings, as Druid contexts do).
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(other) => Err(Error::invalid(format!(
                "{}: expected true or false, found {}",
                self.child(key),
                json_type(other)
            ))),
        }
    }

    /// An optional non-negative integer (also accepts numeric strings).
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().ok()),
            Some(other) => Err(Error::invalid(format!(
                "{}: expected a non-negative integer, found {}",
                self.child(key),
                describe(other)
            ))),
        }
    }

    /// An optional integer.
    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(Value::String(s)) if s.parse::<i64>().is_ok() => Ok(s.parse().ok()),
            Some(other) => Err(Error::invalid(format!(
                "{}: expected an integer, found {}",
                self.child(key),
                describe(other)
            ))),
        }
    }

    /// An optional array.
    pub fn opt_array(&self, key: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(Error::invalid(format!(
                "{}: expected an array, found {}",
                self.child(key),
                json_type(other)
            ))),
        }
    }

    /// A required array.
    pub fn req_array(&self, key: &str) -> Result<&'a Vec<Value>> {
        self.opt_array(key)?.ok_or_else(|| {
            Error::invalid(format!("{}: required field is missing", self.child(key)))
        })
    }

    /// An optional array of strings.
    pub fn opt_str_array(&self, key: &str) -> Result<Option<Vec<String>>> {
        let Some(a) = self.opt_array(key)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(a.len());
        for (i, v) in a.iter().enumerate() {
            match v {
                Value::String(s) => out.push(s.clone()),
                other => {
                    return Err(Error::invalid(format!(
                        "{}[{i}]: expected a string, found {}",
                        self.child(key),
                        json_type(other)
                    )));
                }
            }
        }
        Ok(Some(out))
    }
}

/// Describe a JSON value briefly for error messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {:?}", s.chars().take(40).collect::<String>()),
        other => json_type(other).to_string(),
    }
}

/// A scalar JSON value as an optional string (numbers and booleans by their text).
pub fn scalar_string(v: &Value, path: &str) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(Error::invalid(format!(
            "{path}: expected a string or number, found {}",
            json_type(other)
        ))),
    }
}
