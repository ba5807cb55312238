//! Metadata tables: datasource schemas from segments and the catalog, `INFORMATION_SCHEMA`
//! (SCHEMATA, TABLES, COLUMNS) and `sys.segments`, with Druid's column names.

use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::schema::TIME_COLUMN;
use crate::segment::format::ColumnType;
use crate::sql::datum::Datum;
use crate::sql::planner::Relation;
use crate::table::SqlType;
use crate::timeline::Timeline;

/// A datasource's SQL columns (`__time` first) with their types.
pub type SqlColumns = Arc<Vec<(String, SqlType)>>;

/// A datasource's SQL columns as of a timeline snapshot and catalog spec: still right while
/// both are unchanged.
#[derive(Debug)]
pub(crate) struct ColumnsEntry {
    timeline: Arc<Timeline>,
    /// [`crate::storage::DataDir::datasource_epoch`] before the spec was read.
    epoch: (u64, i64),
    columns: Option<SqlColumns>,
}

/// The SQL columns of a datasource (`__time` first), or `None` when it does not exist. Every
/// SQL statement asks, so the answer is kept until the datasource's segments or spec change.
pub fn datasource_columns(engine: &Engine, ds: &str) -> Result<Option<SqlColumns>> {
    let data = engine.data_dir();
    let epoch = data.datasource_epoch();
    let timeline = data.timeline();
    if let Some(e) = engine.sql_columns.lock().get(ds)
        && e.epoch == epoch
        && e.timeline.same_datasource(&timeline, ds)
    {
        return Ok(e.columns.clone());
    }
    let spec = data.catalog().get_datasource(ds)?;
    let columns = compute_columns(engine, ds, spec.as_deref(), &timeline).map(Arc::new);
    let mut cache = engine.sql_columns.lock();
    // Datasources come and go; a statement on one that is gone should not pin it forever.
    if cache.len() >= 1024 {
        cache.clear();
    }
    cache.insert(
        ds.to_string(),
        ColumnsEntry {
            timeline,
            epoch,
            columns: columns.clone(),
        },
    );
    Ok(columns)
}

fn compute_columns(
    engine: &Engine,
    ds: &str,
    spec: Option<&str>,
    timeline: &Timeline,
) -> Option<Vec<(String, SqlType)>> {
    let records = timeline.segments(ds);
    if spec.is_none() && records.is_empty() {
        return None;
    }
    let mut cols: Vec<(String, SqlType)> = vec![(TIME_COLUMN.to_string(), SqlType::Timestamp)];
    let mut push = |name: &str, t: SqlType| {
        if !cols.iter().any(|c| c.0 == name) {
            cols.push((name.to_string(), t));
        }
    };
    for r in records.iter().take(64) {
        if let Ok(seg) = engine.open_segment(r) {
            for c in seg.columns() {
                let t = match c.column_type {
                    ColumnType::Long => SqlType::Bigint,
                    ColumnType::Double => SqlType::Double,
                    ColumnType::String | ColumnType::MultiString => SqlType::Varchar,
                    _ => SqlType::Other,
                };
                push(&c.name, t);
            }
        }
    }
    if let Some(spec) = spec
        && let Ok(schema) = crate::schema::DataSchema::from_json(spec)
    {
        for d in &schema.dimensions {
            push(&d.name, SqlType::Varchar);
        }
        for m in &schema.metrics {
            push(&m.name, SqlType::Other);
        }
    }
    Some(cols)
}

fn datasources(engine: &Engine) -> Result<Vec<String>> {
    let mut names = engine.data_dir().catalog().list_datasources()?;
    for d in engine.data_dir().timeline().datasources() {
        if !names.contains(&d) {
            names.push(d);
        }
    }
    names.sort();
    Ok(names)
}

fn rel(cols: &[(&str, SqlType)], rows: Vec<Vec<Datum>>) -> Relation {
    Relation {
        names: cols.iter().map(|c| c.0.to_string()).collect(),
        types: cols.iter().map(|c| c.1).collect(),
        rows,
    }
}

fn s(v: &str) -> Datum {
    Datum::Str(v.to_string())
}

const INFO_TABLES: [&str; 3] = ["SCHEMATA", "TABLES", "COLUMNS"];

/// An `INFORMATION_SCHEMA` table.
pub fn information_schema(engine: &Engine, table: &str) -> Result<Relation> {
    use SqlType::Varchar;
    match table.to_ascii_uppercase().as_str() {
        "SCHEMATA" => Ok(rel(
            &[
                ("CATALOG_NAME", Varchar),
                ("SCHEMA_NAME", Varchar),
                ("SCHEMA_OWNER", Varchar),
                ("DEFAULT_CHARACTER_SET_CATALOG", Varchar),
                ("DEFAULT_CHARACTER_SET_SCHEMA", Varchar),
                ("DEFAULT_CHARACTER_SET_NAME", Varchar),
                ("SQL_PATH", Varchar),
            ],
            ["druid", "INFORMATION_SCHEMA", "sys"]
                .iter()
                .map(|n| {
                    vec![
                        s("druid"),
                        s(n),
                        Datum::Null,
                        Datum::Null,
                        Datum::Null,
                        Datum::Null,
                        Datum::Null,
                    ]
                })
                .collect(),
        )),
        "TABLES" => {
            let mut rows = Vec::new();
            for d in datasources(engine)? {
                rows.push(vec![
                    s("druid"),
                    s("druid"),
                    s(&d),
                    s("TABLE"),
                    s("NO"),
                    s("NO"),
                ]);
            }
            for t in INFO_TABLES {
                rows.push(vec![
                    s("druid"),
                    s("INFORMATION_SCHEMA"),
                    s(t),
                    s("SYSTEM_TABLE"),
                    s("NO"),
                    s("NO"),
                ]);
            }
            rows.push(vec![
                s("druid"),
                s("sys"),
                s("segments"),
                s("SYSTEM_TABLE"),
                s("NO"),
                s("NO"),
            ]);
            Ok(rel(
                &[
                    ("TABLE_CATALOG", Varchar),
                    ("TABLE_SCHEMA", Varchar),
                    ("TABLE_NAME", Varchar),
                    ("TABLE_TYPE", Varchar),
                    ("IS_JOINABLE", Varchar),
                    ("IS_BROADCAST", Varchar),
                ],
                rows,
            ))
        }
        "COLUMNS" => {
            let mut rows = Vec::new();
            let mut add = |schema: &str, table: &str, cols: &[(String, SqlType)]| {
                for (i, (name, t)) in cols.iter().enumerate() {
                    let nullable = if name == TIME_COLUMN && schema == "druid" {
                        "NO"
                    } else {
                        "YES"
                    };
                    let type_name = match t {
                        SqlType::Other => "COMPLEX",
                        other => other.sql_name(),
                    };
                    rows.push(vec![
                        s("druid"),
                        s(schema),
                        s(table),
                        s(name),
                        Datum::Long(i as i64 + 1),
                        Datum::Null,
                        s(nullable),
                        s(type_name),
                        Datum::Null,
                        Datum::Null,
                        Datum::Null,
                        Datum::Null,
                        Datum::Null,
                        Datum::Null,
                        Datum::Null,
                        Datum::Null,
                        Datum::Long(jdbc_type(*t)),
                    ]);
                }
            };
            for d in datasources(engine)? {
                if let Some(cols) = datasource_columns(engine, &d)? {
                    add("druid", &d, &cols);
                }
            }
            let meta = |r: &Relation| -> Vec<(String, SqlType)> {
                r.names
                    .iter()
                    .cloned()
                    .zip(r.types.iter().copied())
                    .collect()
            };
            for t in ["SCHEMATA", "TABLES"] {
                let r = information_schema(engine, t)?;
                add("INFORMATION_SCHEMA", t, &meta(&r));
            }
            add("sys", "segments", &meta(&sys_table(engine, "segments")?));
            let own: Vec<(String, SqlType)> = COLUMNS_COLUMNS
                .iter()
                .map(|(n, t)| (n.to_string(), *t))
                .collect();
            add("INFORMATION_SCHEMA", "COLUMNS", &own);
            Ok(rel(&COLUMNS_COLUMNS, rows))
        }
        other => Err(Error::NotFound(format!(
            "table INFORMATION_SCHEMA.{other} not found (tables: SCHEMATA, TABLES, COLUMNS)"
        ))),
    }
}

const COLUMNS_COLUMNS: [(&str, SqlType); 17] = [
    ("TABLE_CATALOG", SqlType::Varchar),
    ("TABLE_SCHEMA", SqlType::Varchar),
    ("TABLE_NAME", SqlType::Varchar),
    ("COLUMN_NAME", SqlType::Varchar),
    ("ORDINAL_POSITION", SqlType::Bigint),
    ("COLUMN_DEFAULT", SqlType::Varchar),
    ("IS_NULLABLE", SqlType::Varchar),
    ("DATA_TYPE", SqlType::Varchar),
    ("CHARACTER_MAXIMUM_LENGTH", SqlType::Bigint),
    ("CHARACTER_OCTET_LENGTH", SqlType::Bigint),
    ("NUMERIC_PRECISION", SqlType::Bigint),
    ("NUMERIC_PRECISION_RADIX", SqlType::Bigint),
    ("NUMERIC_SCALE", SqlType::Bigint),
    ("DATETIME_PRECISION", SqlType::Bigint),
    ("CHARACTER_SET_NAME", SqlType::Varchar),
    ("COLLATION_NAME", SqlType::Varchar),
    ("JDBC_TYPE", SqlType::Bigint),
];

/// `java.sql.Types` codes.
fn jdbc_type(t: SqlType) -> i64 {
    match t {
        SqlType::Timestamp => 93,
        SqlType::Bigint => -5,
        SqlType::Double => 8,
        SqlType::Varchar => 12,
        SqlType::Boolean => 16,
        SqlType::Other => 1111,
    }
}

/// A `sys` table (only `segments`).
pub fn sys_table(engine: &Engine, table: &str) -> Result<Relation> {
    use SqlType::{Bigint, Varchar};
    if !table.eq_ignore_ascii_case("segments") {
        return Err(Error::NotFound(format!(
            "table sys.{table} not found (tables: segments)"
        )));
    }
    let data = engine.data_dir();
    let timeline = data.timeline();
    let mut rows = Vec::new();
    for ds in timeline.datasources() {
        let overshadowed: Vec<_> = timeline
            .overshadowed(&ds)
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut records = timeline.segments(&ds);
        records.extend(timeline.overshadowed(&ds));
        for r in records {
            let is_over = overshadowed.contains(&r.id);
            rows.push(vec![
                s(&r.id.to_string()),
                s(&r.id.datasource),
                s(&crate::time::format_iso_millis(r.id.interval.start)),
                s(&crate::time::format_iso_millis(r.id.interval.end)),
                Datum::Long(r.size_bytes as i64),
                s(&r.id.version.to_string()),
                Datum::Long(r.id.partition as i64),
                Datum::Long(1),
                Datum::Long(r.num_rows as i64),
                Datum::Long(1),
                Datum::Long(1),
                Datum::Long(0),
                Datum::Long(is_over as i64),
            ]);
        }
    }
    Ok(rel(
        &[
            ("segment_id", Varchar),
            ("datasource", Varchar),
            ("start", Varchar),
            ("end", Varchar),
            ("size", Bigint),
            ("version", Varchar),
            ("partition_num", Bigint),
            ("num_replicas", Bigint),
            ("num_rows", Bigint),
            ("is_published", Bigint),
            ("is_available", Bigint),
            ("is_realtime", Bigint),
            ("is_overshadowed", Bigint),
        ],
        rows,
    ))
}
