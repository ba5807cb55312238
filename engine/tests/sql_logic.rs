//! The SQL sqllogictest suite: every `.slt` file under `tests/slt/` runs against an engine with
//! the fixed `events` and `cpu` datasets.

#![allow(clippy::unwrap_used)]

mod sql_support;

use std::path::PathBuf;

use basalt_engine::engine::Engine;
use basalt_engine::sql::SqlRequest;
use basalt_engine::table::SqlType;
use sqllogictest::{DBOutput, DefaultColumnType};

struct Basalt {
    engine: std::sync::Arc<Engine>,
}

#[derive(Debug)]
struct SqlError(String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

impl sqllogictest::DB for Basalt {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let request = SqlRequest {
            query: sql.to_string(),
            ..SqlRequest::default()
        };
        let table = self
            .engine
            .sql(&request, None)
            .map_err(|e| SqlError(e.to_string()))?;
        let types = table
            .columns
            .iter()
            .map(|c| match c.sql_type {
                SqlType::Bigint => DefaultColumnType::Integer,
                SqlType::Double => DefaultColumnType::FloatingPoint,
                _ => DefaultColumnType::Text,
            })
            .collect();
        let rows = table
            .rows
            .iter()
            .map(|r| r.iter().map(sql_support::render).collect())
            .collect();
        Ok(DBOutput::Rows { types, rows })
    }
}

#[test]
fn sqllogictest_suite() {
    let dir = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(Engine::open(dir.path()).unwrap());
    sql_support::build_events(&engine);
    sql_support::build_cpu(&engine, 7);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files under {}", root.display());
    let mut failures = Vec::new();
    for f in &files {
        let e = engine.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let engine = e.clone();
            async move { Ok(Basalt { engine }) }
        });
        // Column type letters are documentation here; values are checked exactly.
        runner.with_column_validator(|_, _| true);
        let records = sqllogictest::parse_file::<DefaultColumnType>(f)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for r in records {
            if let Err(err) = runner.run(r) {
                failures.push(format!("{}: {err}", f.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
