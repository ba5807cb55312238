//! `basalt segment inspect|verify`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use basalt_engine::segment::format::ColumnMeta;
use basalt_engine::segment::{Segment, verify_segment};
use basalt_engine::time::format_iso_millis;
use serde_json::json;

/// Output format of `inspect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// JSON.
    Json,
}

fn encodings(c: &ColumnMeta) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &c.streams {
        for b in &s.blocks {
            *counts.entry(b.codec.name()).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}×{v}")).collect();
    for p in &c.parts {
        parts.push(p.role.name().to_string());
    }
    parts.join(", ")
}

fn column_json(c: &ColumnMeta) -> serde_json::Value {
    json!({
        "name": c.name,
        "kind": c.kind.name(),
        "type": c.column_type.name(),
        "bytes": c.stored_bytes(),
        "nullCount": c.null_count,
        "cardinality": c.cardinality,
        "blocks": c.streams.first().map(|s| s.blocks.len()).unwrap_or(0),
        "encodings": encodings(c),
        "parts": c.parts.iter().map(|p| json!({"role": p.role.name(), "bytes": p.range.len})).collect::<Vec<_>>(),
    })
}

/// Print what a segment holds.
pub fn inspect(path: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let seg = Segment::open(path)?;
    let d = seg.directory();
    let interval = seg.interval();
    match format {
        Format::Json => {
            let v = json!({
                "path": path.display().to_string(),
                "datasource": d.datasource,
                "interval": interval.to_string(),
                "rows": d.num_rows,
                "minTime": format_iso_millis(d.min_time),
                "maxTime": format_iso_millis(d.max_time),
                "bytes": seg.size_bytes(),
                "rollup": d.rollup,
                "sortOrder": d.sort_order,
                "schema": serde_json::from_str::<serde_json::Value>(&d.schema_json)?,
                "columns": d.columns.iter().map(column_json).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Text => {
            println!("segment     {}", path.display());
            println!("datasource  {}", d.datasource);
            println!("interval    {interval}");
            println!(
                "rows        {} (time {} .. {})",
                d.num_rows,
                format_iso_millis(d.min_time),
                format_iso_millis(d.max_time)
            );
            let bytes = seg.size_bytes();
            let per_row = if d.num_rows > 0 {
                format!("{:.2} bytes/row", bytes as f64 / d.num_rows as f64)
            } else {
                "empty".to_string()
            };
            println!("size        {bytes} bytes ({per_row})");
            println!("rollup      {}", d.rollup);
            println!("sort order  {}", d.sort_order.join(", "));
            println!("schema      {}", d.schema_json);
            println!();
            println!(
                "{:<24} {:<9} {:<22} {:>12} {:>10} {:>11}  encodings",
                "column", "kind", "type", "bytes", "nulls", "cardinality"
            );
            for c in &d.columns {
                println!(
                    "{:<24} {:<9} {:<22} {:>12} {:>10} {:>11}  {}",
                    c.name,
                    c.kind.name(),
                    c.column_type.name(),
                    c.stored_bytes(),
                    c.null_count,
                    if c.cardinality > 0
                        || c.part(basalt_engine::segment::format::PartRole::Dictionary)
                            .is_some()
                    {
                        c.cardinality.to_string()
                    } else {
                        "-".to_string()
                    },
                    encodings(c)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Verify segments; prints one line per file and fails if any is damaged.
pub fn verify(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = 0usize;
    for path in paths {
        match Segment::open(path).and_then(|s| verify_segment(&s)) {
            Ok(r) => println!(
                "ok      {}: {} rows, {} columns, {} blocks, {} bytes checked",
                path.display(),
                r.rows,
                r.columns,
                r.blocks,
                r.bytes_checked
            ),
            Err(e) => {
                failed += 1;
                println!("FAILED  {}: {e}", path.display());
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
