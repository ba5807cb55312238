//! The load spec: Druid's `dataSchema` plus the `inputFormat` and `granularitySpec.intervals`
//! the loader needs.
//!
//! Accepted shapes: a bare `dataSchema` (optionally with a top-level `inputFormat`),
//! `{"dataSchema": …, "inputFormat": …}`, `{"dataSchema": …, "ioConfig": {"inputFormat": …}}`,
//! or a full Druid ingestion spec `{"type": "index_parallel", "spec": {"dataSchema": …,
//! "ioConfig": {"inputFormat": …}, "tuningConfig": …}}` (tuning is ignored).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::schema::DataSchema;
use crate::time::Interval;

/// How input files are parsed when the spec says so (otherwise detected per file).
#[derive(Clone, Debug, PartialEq)]
pub enum InputFormat {
    /// Apache Parquet, read with arrow-rs.
    Parquet,
    /// Delimited text.
    Csv(CsvOptions),
    /// Newline-delimited JSON objects.
    Json,
}

/// Druid's `csv` / `tsv` `inputFormat` options.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// Field delimiter (`,` for csv, tab for tsv).
    pub delimiter: u8,
    /// Column names; `None` reads them from the first (non-skipped) line.
    pub columns: Option<Vec<String>>,
    /// Lines skipped before the header or the data.
    pub skip_header_rows: usize,
    /// Splits string values into multi-value lists (Druid's `listDelimiter`); `None` keeps them.
    pub list_delimiter: Option<String>,
}

impl CsvOptions {
    /// Defaults for a delimiter: header line, nothing skipped, no list splitting.
    pub fn with_delimiter(delimiter: u8) -> CsvOptions {
        CsvOptions {
            delimiter,
            columns: None,
            skip_header_rows: 0,
            list_delimiter: None,
        }
    }
}

/// A parsed load spec.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The datasource schema (name possibly overridden by `--datasource`).
    pub schema: DataSchema,
    /// The input format, if the spec names one.
    pub input_format: Option<InputFormat>,
    /// `granularitySpec.intervals`: rows outside are dropped (counted, not errors).
    pub intervals: Option<Vec<Interval>>,
}

impl LoadSpec {
    /// Parse a spec document; `datasource` overrides `dataSource`.
    pub fn from_value(doc: &Value, datasource: Option<&str>) -> Result<LoadSpec> {
        let mut doc = doc.clone();
        let input_format_value = take_input_format(&mut doc);
        let mut schema = DataSchema::from_value(&doc)?;
        if let Some(ds) = datasource {
            crate::storage::validate_datasource_name(ds)?;
            schema.data_source = ds.to_string();
        }
        crate::storage::validate_datasource_name(&schema.data_source)?;
        let input_format = match input_format_value {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_input_format(&v)?),
        };
        let intervals = parse_intervals(data_schema_of(&doc))?;
        Ok(LoadSpec {
            schema,
            input_format,
            intervals,
        })
    }
}

/// The `dataSchema` object inside any of the accepted shapes.
fn data_schema_of(doc: &Value) -> &Value {
    let mut v = doc;
    if let Some(s) = v.get("spec") {
        v = s;
    }
    if let Some(d) = v.get("dataSchema") {
        v = d;
    }
    v
}

/// Remove and return `inputFormat` from wherever the spec put it, so the remaining document
/// is one that [`DataSchema::from_value`] accepts.
fn take_input_format(doc: &mut Value) -> Option<Value> {
    let mut found = None;
    if let Some(obj) = doc.as_object_mut() {
        if let Some(v) = obj.remove("inputFormat") {
            found = Some(v);
        }
        for holder in [obj.get_mut("ioConfig")] {
            if let Some(Value::Object(io)) = holder
                && let Some(v) = io.remove("inputFormat")
            {
                found.get_or_insert(v);
            }
        }
        if let Some(Value::Object(spec)) = obj.get_mut("spec")
            && let Some(Value::Object(io)) = spec.get_mut("ioConfig")
            && let Some(v) = io.remove("inputFormat")
        {
            found.get_or_insert(v);
        }
    }
    found
}

fn parse_input_format(v: &Value) -> Result<InputFormat> {
    const PATH: &str = "inputFormat";
    let obj = v
        .as_object()
        .ok_or_else(|| Error::invalid(format!("{PATH}: expected an object")))?;
    let kind = obj.get("type").and_then(Value::as_str).ok_or_else(|| {
        Error::invalid(format!("{PATH}.type: required (parquet, csv, tsv or json)"))
    })?;
    let known: &[&str] = match kind {
        "parquet" => &["type", "binaryAsString", "flattenSpec"],
        "json" => &["type", "flattenSpec", "featureSpec", "keepNullColumns"],
        "csv" | "tsv" => &[
            "type",
            "columns",
            "findColumnsFromHeader",
            "skipHeaderRows",
            "listDelimiter",
            "delimiter",
        ],
        other => {
            return Err(Error::invalid(format!(
                "{PATH}.type: unsupported input format `{other}` (supported: parquet, csv, tsv, json)"
            )));
        }
    };
    for key in obj.keys() {
        if !known.contains(&key.as_str()) {
            return Err(Error::invalid(format!(
                "{PATH}.{key}: unknown field for inputFormat `{kind}`"
            )));
        }
    }
    if let Some(fs) = obj.get("flattenSpec")
        && !fs.is_null()
    {
        return Err(Error::invalid(format!(
            "{PATH}.flattenSpec: not supported; fields are read by name"
        )));
    }
    Ok(match kind {
        "parquet" => InputFormat::Parquet,
        "json" => InputFormat::Json,
        _ => {
            let default_delim = if kind == "tsv" { b'\t' } else { b',' };
            let delimiter = match obj.get("delimiter") {
                None | Some(Value::Null) => default_delim,
                Some(Value::String(s)) if s.len() == 1 => s.as_bytes()[0],
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "{PATH}.delimiter: expected a one-byte string, found {other}"
                    )));
                }
            };
            let columns = match obj.get("columns") {
                None | Some(Value::Null) => None,
                Some(Value::Array(a)) => Some(
                    a.iter()
                        .enumerate()
                        .map(|(i, c)| {
                            c.as_str().map(str::to_string).ok_or_else(|| {
                                Error::invalid(format!("{PATH}.columns[{i}]: expected a string"))
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                ),
                Some(_) => {
                    return Err(Error::invalid(format!(
                        "{PATH}.columns: expected an array of names"
                    )));
                }
            };
            let from_header = obj.get("findColumnsFromHeader").and_then(Value::as_bool);
            let columns = match (from_header, columns) {
                (Some(true), _) | (None, None) => None,
                (_, Some(c)) if !c.is_empty() => Some(c),
                _ => {
                    return Err(Error::invalid(format!(
                        "{PATH}.columns: required when findColumnsFromHeader is false"
                    )));
                }
            };
            let skip_header_rows = match obj.get("skipHeaderRows") {
                None | Some(Value::Null) => 0,
                Some(v) => v.as_u64().ok_or_else(|| {
                    Error::invalid(format!("{PATH}.skipHeaderRows: expected a count"))
                })? as usize,
            };
            let list_delimiter = match obj.get("listDelimiter") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(_) => {
                    return Err(Error::invalid(format!(
                        "{PATH}.listDelimiter: expected a non-empty string"
                    )));
                }
            };
            InputFormat::Csv(CsvOptions {
                delimiter,
                columns,
                skip_header_rows,
                list_delimiter,
            })
        }
    })
}

fn parse_intervals(data_schema: &Value) -> Result<Option<Vec<Interval>>> {
    const PATH: &str = "dataSchema.granularitySpec.intervals";
    let Some(v) = data_schema
        .get("granularitySpec")
        .and_then(|g| g.get("intervals"))
    else {
        return Ok(None);
    };
    match v {
        Value::Null => Ok(None),
        Value::Array(a) if a.is_empty() => Ok(None),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let text = s
                    .as_str()
                    .ok_or_else(|| Error::invalid(format!("{PATH}[{i}]: expected a string")))?;
                Interval::parse(text).map_err(|e| Error::invalid(format!("{PATH}[{i}]: {e}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        _ => Err(Error::invalid(format!(
            "{PATH}: expected an array of ISO intervals"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "dataSource": "cpu",
            "timestampSpec": {"column": "ts", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["host"]},
            "granularitySpec": {"segmentGranularity": "hour",
                "intervals": ["2016-01-01/2016-01-02"]}
        })
    }

    #[test]
    fn accepts_the_usual_shapes() {
        let bare = LoadSpec::from_value(&schema(), None).unwrap();
        assert_eq!(bare.input_format, None);
        assert_eq!(bare.intervals.as_ref().unwrap().len(), 1);

        let mut with_format = schema();
        with_format["inputFormat"] = json!({"type": "tsv", "skipHeaderRows": 1});
        let s = LoadSpec::from_value(&with_format, Some("other")).unwrap();
        assert_eq!(s.schema.data_source, "other");
        let Some(InputFormat::Csv(o)) = s.input_format else {
            panic!()
        };
        assert_eq!((o.delimiter, o.skip_header_rows), (b'\t', 1));

        let druid = json!({"type": "index_parallel", "spec": {"dataSchema": schema(),
            "ioConfig": {"type": "index_parallel", "inputFormat": {"type": "json"}},
            "tuningConfig": {"type": "index_parallel"}}});
        let s = LoadSpec::from_value(&druid, None).unwrap();
        assert_eq!(s.input_format, Some(InputFormat::Json));
        assert!(s.intervals.is_some());
    }

    #[test]
    fn errors_name_the_field() {
        let mut bad = schema();
        bad["inputFormat"] = json!({"type": "avro"});
        let e = LoadSpec::from_value(&bad, None).unwrap_err().to_string();
        assert!(e.contains("inputFormat.type"), "{e}");
        bad["inputFormat"] = json!({"type": "csv", "findColumnsFromHeader": false});
        let e = LoadSpec::from_value(&bad, None).unwrap_err().to_string();
        assert!(e.contains("inputFormat.columns"), "{e}");
        let e = LoadSpec::from_value(&schema(), Some("a/b"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a/b"), "{e}");
    }
}
