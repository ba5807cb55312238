//! Workload `tsbs-queries`: TSBS devops queries (plus Druid-style topN, filtered timeseries and
//! count distinct) on the TSBS cpu-only data, run on Basalt (native JSON queries, in process)
//! and on the peers (SQL on DuckDB and ClickHouse via chdb, each in its own child process) in
//! the same invocation, with their results checked against each other.
//!
//! - [`setup`]: the Parquet file, Basalt's data directory (hourly segments published into a
//!   datasource `cpu`) and the peers' databases, each reused when already there;
//! - [`defs`]: the queries, in Basalt's native JSON and in the peers' SQL;
//! - [`peer`]: the peers' query servers (`peers.py query --serve`);
//! - [`compare`]: flattening the results into rows and comparing them.
//!
//! Timing: per query, one warm-up round (Basalt, then each peer; its results are the ones
//! compared), then `runs` timed rounds, each running every system once, so that load on the
//! shared machine hits the systems alike. Basalt's time is `Engine::query_json_output` until
//! the result is materialized in memory (typed columns for a scan, the response JSON value
//! for the other query types); a peer's is its query call until the result is a materialized
//! Arrow table (the time to ship rows to this process is not counted). Reported: the median
//! of the timed runs. Rendering results as JSON text is timed by `--basalt-sql` (over HTTP).

pub mod compare;
pub mod defs;
pub mod peer;
pub mod setup;
pub mod sql_http;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use basalt_engine::engine::{Engine, QueryOutput};
use serde::Serialize;
use serde_json::{Value, json};

use crate::peers::PeersScript;
use crate::report::peak_rss_bytes;
use crate::tsbs::TsbsConfig;
use compare::{Agreement, Row, agreement, basalt_rows, peer_rows};
use defs::{Check, Dataset, QueryDef, tsbs_queries};
use peer::PeerServer;

/// Result rows kept per system and query as samples.
const SAMPLE_ROWS: usize = 3;

/// What `tsbs-queries` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Basalt's data directory (created and filled if needed).
    pub data_dir: PathBuf,
    /// The TSBS Parquet file (generated from `tsbs` if missing and needed).
    pub parquet: PathBuf,
    /// The TSBS data the Parquet file holds.
    pub tsbs: TsbsConfig,
    /// The peers' databases (`peers.py load`).
    pub peers_workdir: PathBuf,
    pub script: PeersScript,
    /// Peers to run (`duckdb`, `clickhouse`, `duckdb_sorted`); none to run Basalt alone.
    pub peers: Vec<String>,
    /// Seed of the queries' random parameters.
    pub seed: u64,
    /// Timed runs per query and system, after one warm-up.
    pub runs: usize,
    /// Only the queries with these names (all when empty).
    pub only: Vec<String>,
    /// Threads building Basalt's segments (setup only).
    pub threads: usize,
    /// Drop and publish Basalt's datasource again.
    pub rebuild: bool,
    /// Largest result whose rows the peers send back for the value checks.
    pub max_check_rows: usize,
    /// Only write the queries to this file (the input of `peers.py query --queries`), run
    /// nothing.
    pub dump_queries: Option<PathBuf>,
    /// Also run every query as Druid SQL and as native JSON through this `basalt` binary's
    /// `serve` (on `data_dir`), see [`sql_http`].
    pub basalt_sql: Option<PathBuf>,
}

/// The timings of one system on one query.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub warmup_ms: Option<f64>,
    pub ms: Vec<f64>,
    pub median_ms: Option<f64>,
    pub rows: Option<usize>,
    pub error: Option<String>,
}

impl Timings {
    fn failed(e: &anyhow::Error) -> Self {
        Self {
            error: Some(format!("{e:#}")),
            ..Self::default()
        }
    }

    fn finish(&mut self) {
        self.median_ms = median(&self.ms);
    }
}

/// Everything measured for one query.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    pub name: String,
    pub description: String,
    pub basalt_query: Value,
    pub sql: Value,
    pub check: Check,
    pub basalt: Timings,
    /// Per peer, in the order of [`Options::peers`].
    pub peers: Vec<(String, Timings)>,
    /// Basalt's median over the faster peer's (below 1: Basalt is faster).
    pub ratio_vs_best_peer: Option<f64>,
    pub agreement: Vec<Agreement>,
    /// The first rows of each system's result (compared columns).
    pub samples: Value,
    /// `Engine::explain_json` of the query.
    pub explain: Value,
    pub load_average_1m: [Option<f64>; 2],
    /// Native vs SQL through `basalt serve` (with `--basalt-sql`).
    pub sql_vs_native: Option<sql_http::SqlVsNative>,
}

/// Median of `xs` (mean of the middle two for an even count); `None` when empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Geometric mean of positive values; `None` when empty.
pub fn geomean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() || xs.iter().any(|&x| x <= 0.0 || !x.is_finite()) {
        return None;
    }
    Some((xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp())
}

fn load_average_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs the workload; returns its JSON result.
pub fn run(opts: &Options) -> anyhow::Result<Value> {
    let data = Dataset {
        hosts: opts.tsbs.hosts,
        start_ms: opts.tsbs.start_ms,
        end_ms: opts.tsbs.end_ms,
    };
    let mut queries = tsbs_queries(&data, opts.seed);
    if !opts.only.is_empty() {
        for name in &opts.only {
            anyhow::ensure!(
                queries.iter().any(|q| &q.name == name),
                "unknown query {name:?} (known: {})",
                queries
                    .iter()
                    .map(|q| q.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        queries.retain(|q| opts.only.contains(&q.name));
    }

    if let Some(path) = &opts.dump_queries {
        let list: Vec<Value> = queries
            .iter()
            .map(|q| {
                json!({
                    "name": q.name,
                    "description": q.description,
                    "basalt": q.basalt,
                    "sql": {"duckdb": q.duckdb, "clickhouse": q.clickhouse, "druid": q.druid},
                    "time_columns": q.time_columns,
                })
            })
            .collect();
        std::fs::write(path, serde_json::to_string_pretty(&list)? + "\n")
            .with_context(|| format!("write {}", path.display()))?;
        println!("wrote {} queries to {}", list.len(), path.display());
        return Ok(json!({"dumped_queries": path, "queries": list.len()}));
    }

    // --- setup, off the clock
    let engine = Engine::open(&opts.data_dir)
        .with_context(|| format!("open Basalt data dir {}", opts.data_dir.display()))?;
    let needs_basalt = opts.rebuild
        || engine
            .data_dir()
            .timeline()
            .segments(setup::DATASOURCE)
            .is_empty();
    let needs_peers = !setup::missing_peers(&opts.peers_workdir, &opts.peers).is_empty();
    let parquet_setup = if needs_basalt || needs_peers {
        Some(setup::ensure_parquet(
            &opts.parquet,
            &opts.tsbs,
            opts.threads,
        )?)
    } else {
        None
    };
    let basalt_setup = setup::ensure_basalt_data(
        &engine,
        &opts.parquet,
        opts.tsbs.rows(),
        opts.threads,
        opts.rebuild,
    )?;
    let peers_setup = if opts.peers.is_empty() {
        Value::Null
    } else {
        setup::ensure_peers(
            &opts.script,
            &opts.parquet,
            &opts.peers_workdir,
            &opts.peers,
        )?
    };
    let boundary = engine.query_json(
        &json!({"queryType": "timeBoundary", "dataSource": setup::DATASOURCE}).to_string(),
    )?;

    let mut servers = Vec::new();
    let mut peer_info = serde_json::Map::new();
    for p in &opts.peers {
        let (server, info) = PeerServer::spawn(&opts.script, p, &opts.peers_workdir)
            .with_context(|| format!("start peer {p}"))?;
        peer_info.insert(p.clone(), info);
        servers.push(server);
    }
    let basalt_server = match &opts.basalt_sql {
        Some(bin) => Some(
            sql_http::BasaltServer::spawn(bin, &opts.data_dir)
                .context("start basalt serve for --basalt-sql")?,
        ),
        None => None,
    };

    println!(
        "tsbs-queries: {} queries, 1 warm-up + {} timed runs each, systems interleaved run by run \
         (Basalt{}); load average {}",
        queries.len(),
        opts.runs,
        opts.peers
            .iter()
            .map(|p| format!(", {p}"))
            .collect::<String>(),
        load_average_1m().map_or("n/a".to_owned(), |l| format!("{l:.2}"))
    );
    let mut results = Vec::with_capacity(queries.len());
    for q in &queries {
        let r = run_query(&engine, &mut servers, basalt_server.as_ref(), q, opts);
        print_progress(&r);
        results.push(r);
    }

    let mut peer_rss = serde_json::Map::new();
    for s in &mut servers {
        peer_rss.insert(s.name.clone(), json!(s.peak_rss_bytes()));
    }
    drop(servers);

    let server_rss = basalt_server
        .as_ref()
        .and_then(sql_http::BasaltServer::peak_rss_bytes);
    drop(basalt_server);
    let names: Vec<String> = opts.peers.clone();
    let summary = summarize(&results, &names);
    let sql_table: Vec<(String, sql_http::SqlVsNative)> = results
        .iter()
        .filter_map(|r| Some((r.name.clone(), r.sql_vs_native.clone()?)))
        .collect();
    if !sql_table.is_empty() {
        println!();
        println!("SQL vs native through basalt serve (HTTP, loopback):");
        println!("{}", sql_http::markdown_table(&sql_table));
        let overheads: Vec<f64> = sql_table
            .iter()
            .filter_map(|(_, s)| Some(s.sql_median_ms? / s.native_median_ms?))
            .collect();
        println!(
            "geometric mean SQL/native: {} over {} queries; server peak RSS {}",
            geomean(&overheads).map_or("n/a".to_owned(), |g| format!("{g:.3}")),
            overheads.len(),
            server_rss.map_or("n/a".to_owned(), |b| format!(
                "{:.0} MiB",
                b as f64 / 1048576.0
            ))
        );
    }
    println!();
    println!("{}", markdown_table(&results, &names, &summary));
    let mismatches: Vec<&Agreement> = results
        .iter()
        .flat_map(|r| r.agreement.iter())
        .filter(|a| !a.ok)
        .collect();
    for r in &results {
        for a in r.agreement.iter().filter(|a| !a.ok) {
            println!("MISMATCH {} vs {}: {}", r.name, a.peer, a.notes.join("; "));
        }
        if let Some(e) = &r.basalt.error {
            println!("ERROR {} on Basalt: {e}", r.name);
        }
        for (p, t) in &r.peers {
            if let Some(e) = &t.error {
                println!("ERROR {} on {p}: {e}", r.name);
            }
        }
    }
    println!(
        "{} mismatch(es); peak RSS: runner {}, peers {}",
        mismatches.len(),
        peak_rss_bytes().map_or("n/a".to_owned(), |b| format!(
            "{:.0} MiB",
            b as f64 / 1048576.0
        )),
        Value::from(peer_rss.clone())
    );

    Ok(json!({
        "dataset": "tsbs-devops-cpu-only",
        "data": data,
        "data_dir": opts.data_dir,
        "parquet": opts.parquet,
        "seed": opts.seed,
        "runs": opts.runs,
        "warmup_runs": 1,
        "timing": "median of the timed runs; Basalt: Engine::query_json_output until the result \
                   is materialized (typed columns for scan, the response JSON value otherwise; \
                   in process); peers: the query call until the result is a \
                   materialized Arrow table (in the peer's process); rounds interleave the systems",
        "setup": {"parquet": parquet_setup, "basalt": basalt_setup, "peers": peers_setup},
        "basalt_time_boundary": boundary,
        "peers": peer_info,
        "queries": results,
        "summary": summary,
        "peak_rss_bytes": {"runner": peak_rss_bytes(), "peers": peer_rss},
        "load_average_1m_end": load_average_1m(),
        "basalt_server_peak_rss_bytes": server_rss,
    }))
}

fn run_query(
    engine: &Engine,
    servers: &mut [PeerServer],
    basalt_server: Option<&sql_http::BasaltServer>,
    q: &QueryDef,
    opts: &Options,
) -> QueryResult {
    let load_before = load_average_1m();
    let text = q.basalt.to_string();
    let explain = engine
        .explain_json(&text)
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
    let count_only = matches!(q.check, Check::Rows);

    // Warm-up round: its results are the ones compared.
    let mut basalt = Timings::default();
    let mut basalt_result: Option<Vec<Row>> = None;
    let t0 = Instant::now();
    match engine.query_json_output(&text) {
        Ok(out) => {
            basalt.warmup_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
            if count_only {
                basalt.rows = Some(match out {
                    QueryOutput::Scan(s) => s.num_rows(),
                    QueryOutput::Json(v) => count_rows(&v),
                });
                basalt_result = Some(Vec::new());
            } else {
                match basalt_rows(&out.into_json()) {
                    Ok(rows) => {
                        basalt.rows = Some(rows.len());
                        basalt_result = Some(rows);
                    }
                    Err(e) => basalt = Timings::failed(&e.context("unexpected response")),
                }
            }
        }
        Err(e) => basalt = Timings::failed(&anyhow::Error::from(e)),
    }
    let mut peers: Vec<(String, Timings)> = Vec::with_capacity(servers.len());
    let mut peer_results: Vec<Option<(usize, Option<Vec<Row>>)>> = Vec::new();
    for s in servers.iter_mut() {
        let sql = peer_sql(q, &s.name);
        let mut t = Timings::default();
        let mut res = None;
        match s.run(sql, 1, !count_only, opts.max_check_rows, &q.time_columns) {
            Ok(run) => {
                t.warmup_ms = run.ms.first().copied();
                t.rows = Some(run.rows);
                let rows = run
                    .data
                    .as_deref()
                    .map(|d| peer_rows(&run.columns, d))
                    .transpose();
                match rows {
                    Ok(rows) => res = Some((run.rows, rows)),
                    Err(e) => t = Timings::failed(&e),
                }
            }
            Err(e) => t = Timings::failed(&e),
        }
        peers.push((s.name.clone(), t));
        peer_results.push(res);
    }

    // Timed rounds.
    for _ in 0..opts.runs {
        if basalt.error.is_none() {
            let t0 = Instant::now();
            let r = engine.query_json_output(&text);
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            // Freed off the clock, like the peers free their previous result before a run.
            match r {
                Ok(v) => {
                    basalt.ms.push(ms);
                    drop(v);
                }
                Err(e) => basalt = Timings::failed(&anyhow::Error::from(e)),
            }
        }
        for (s, (_, t)) in servers.iter_mut().zip(peers.iter_mut()) {
            if t.error.is_some() {
                continue;
            }
            match s.run(peer_sql(q, &s.name), 1, false, 0, &q.time_columns) {
                Ok(run) => t.ms.extend(run.ms),
                Err(e) => *t = Timings::failed(&e),
            }
        }
    }
    basalt.finish();
    for (_, t) in &mut peers {
        t.finish();
    }

    let mut agreements = Vec::new();
    if let Some(ours) = &basalt_result {
        for ((name, _), res) in peers.iter().zip(&peer_results) {
            if let Some((count, rows)) = res {
                agreements.push(agreement(
                    &q.check,
                    &q.columns,
                    name,
                    ours_or_count(ours, basalt.rows, count_only).as_slice(),
                    *count,
                    rows.as_deref(),
                ));
            }
        }
    }
    let mut samples = serde_json::Map::new();
    let mut sample = |who: &str, rows: &[Row]| {
        let head = &rows[..rows.len().min(SAMPLE_ROWS)];
        if let Ok(p) = compare::project(head, &q.columns, who) {
            samples.insert(who.to_owned(), json!(p));
        }
    };
    if let Some(ours) = &basalt_result {
        sample("basalt", ours);
    }
    for ((name, _), res) in peers.iter().zip(&peer_results) {
        if let Some((_, Some(rows))) = res {
            sample(name, rows);
        }
    }
    let sql_vs_native = basalt_server.map(|server| {
        let duckdb = peers
            .iter()
            .zip(&peer_results)
            .find(|((name, _), _)| name == "duckdb")
            .and_then(|(_, res)| res.as_ref());
        sql_http::measure(server, q, opts.runs, duckdb)
    });
    let best_peer = peers
        .iter()
        .filter_map(|(_, t)| t.median_ms)
        .min_by(f64::total_cmp);
    QueryResult {
        name: q.name.clone(),
        description: q.description.clone(),
        basalt_query: q.basalt.clone(),
        sql: json!({"duckdb": q.duckdb, "clickhouse": q.clickhouse}),
        check: q.check.clone(),
        ratio_vs_best_peer: basalt.median_ms.zip(best_peer).map(|(b, p)| b / p),
        basalt,
        peers,
        agreement: agreements,
        samples: Value::Object(samples),
        explain,
        load_average_1m: [load_before, load_average_1m()],
        sql_vs_native,
    }
}

/// For a count-only check, stand-in rows of the right number (their values are not compared).
fn ours_or_count(ours: &[Row], rows: Option<usize>, count_only: bool) -> Vec<Row> {
    if count_only {
        vec![Row::new(); rows.unwrap_or(0)]
    } else {
        ours.to_vec()
    }
}

fn peer_sql<'a>(q: &'a QueryDef, peer: &str) -> &'a str {
    if peer == "clickhouse" {
        &q.clickhouse
    } else {
        &q.duckdb
    }
}

/// Result rows of a native response without flattening them (for large scans).
fn count_rows(v: &Value) -> usize {
    v.as_array().map_or(0, |items| {
        items
            .iter()
            .map(|i| {
                if let Some(e) = i.get("events").and_then(Value::as_array) {
                    e.len()
                } else if let Some(r) = i.get("result").and_then(Value::as_array) {
                    r.len()
                } else {
                    1
                }
            })
            .sum()
    })
}

fn print_progress(r: &QueryResult) {
    let fmt = |t: &Timings| match (t.median_ms, &t.error) {
        (Some(m), _) => format!("{m:.1} ms"),
        (None, Some(_)) => "error".to_owned(),
        (None, None) => "-".to_owned(),
    };
    let peers: String = r
        .peers
        .iter()
        .map(|(p, t)| format!(", {p} {}", fmt(t)))
        .collect();
    let agree = if r.agreement.iter().all(|a| a.ok) {
        "agree"
    } else {
        "MISMATCH"
    };
    println!(
        "{:<26} Basalt {}{peers} ({} rows, {agree})",
        r.name,
        fmt(&r.basalt),
        r.basalt.rows.map_or("?".to_owned(), |n| n.to_string())
    );
    let errors = std::iter::once(("Basalt", &r.basalt))
        .chain(r.peers.iter().map(|(p, t)| (p.as_str(), t)))
        .filter_map(|(who, t)| Some((who, t.error.as_deref()?)));
    for (who, e) in errors {
        println!("  error on {who}: {e}");
    }
}

/// Geometric means over the queries every system answered.
fn summarize(results: &[QueryResult], peers: &[String]) -> Value {
    let complete: Vec<&QueryResult> = results
        .iter()
        .filter(|r| {
            r.basalt.median_ms.is_some() && r.peers.iter().all(|(_, t)| t.median_ms.is_some())
        })
        .collect();
    let col = |f: &dyn Fn(&QueryResult) -> Option<f64>| -> Option<f64> {
        geomean(&complete.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
    };
    let mut geo = serde_json::Map::new();
    geo.insert("basalt_ms".to_owned(), json!(col(&|r| r.basalt.median_ms)));
    for (i, p) in peers.iter().enumerate() {
        geo.insert(
            format!("{p}_ms"),
            json!(col(&|r| r.peers.get(i).and_then(|(_, t)| t.median_ms))),
        );
    }
    geo.insert(
        "ratio_vs_best_peer".to_owned(),
        json!(col(&|r| r.ratio_vs_best_peer)),
    );
    let mismatches: Vec<Value> = results
        .iter()
        .flat_map(|r| {
            r.agreement
                .iter()
                .filter(|a| !a.ok)
                .map(|a| json!({"query": r.name, "peer": a.peer, "notes": a.notes}))
        })
        .collect();
    json!({
        "queries": results.len(),
        "queries_in_geomean": complete.len(),
        "geomean": geo,
        "mismatches": mismatches,
    })
}

fn display_name(peer: &str) -> &str {
    match peer {
        "duckdb" => "DuckDB",
        "duckdb_sorted" => "DuckDB (sorted)",
        "clickhouse" => "ClickHouse",
        other => other,
    }
}

/// The results as a Markdown table, with the geometric means as the last row.
pub fn markdown_table(results: &[QueryResult], peers: &[String], summary: &Value) -> String {
    let ms = |m: Option<f64>, e: &Option<String>| match (m, e) {
        (Some(m), _) if m >= 100.0 => format!("{m:.0}"),
        (Some(m), _) => format!("{m:.1}"),
        (None, Some(_)) => "error".to_owned(),
        (None, None) => "-".to_owned(),
    };
    let mut out = String::from("| query | Basalt ms |");
    for p in peers {
        out.push_str(&format!(" {} ms |", display_name(p)));
    }
    out.push_str(" Basalt / faster peer | rows | results |\n|---|--:|");
    out.push_str(&"--:|".repeat(peers.len()));
    out.push_str("--:|--:|---|\n");
    for r in results {
        out.push_str(&format!(
            "| {} | {} |",
            r.name,
            ms(r.basalt.median_ms, &r.basalt.error)
        ));
        for (_, t) in &r.peers {
            out.push_str(&format!(" {} |", ms(t.median_ms, &t.error)));
        }
        let agree = if r.agreement.is_empty() {
            "-".to_owned()
        } else if r.agreement.iter().all(|a| a.ok) {
            let what = &r.agreement[0].compared;
            format!("agree ({what})")
        } else {
            let bad: Vec<&str> = r
                .agreement
                .iter()
                .filter(|a| !a.ok)
                .map(|a| display_name(&a.peer))
                .collect();
            format!("**differ** from {}", bad.join(", "))
        };
        out.push_str(&format!(
            " {} | {} | {agree} |\n",
            r.ratio_vs_best_peer
                .map_or("-".to_owned(), |x| format!("{x:.2}")),
            r.basalt.rows.map_or("-".to_owned(), |n| n.to_string()),
        ));
    }
    let g = &summary["geomean"];
    let num = |v: &Value, d: usize| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.d$}"));
    out.push_str(&format!(
        "| **geometric mean** ({} queries) | {} |",
        summary["queries_in_geomean"],
        num(&g["basalt_ms"], 1)
    ));
    for p in peers {
        out.push_str(&format!(" {} |", num(&g[format!("{p}_ms").as_str()], 1)));
    }
    out.push_str(&format!(" {} | | |\n", num(&g["ratio_vs_best_peer"], 2)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_geomeans() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        let g = geomean(&[1.0, 100.0]).unwrap_or(f64::NAN);
        assert!((g - 10.0).abs() < 1e-9);
        assert_eq!(geomean(&[1.0, 0.0]), None);
    }

    /// Setup and every query on Basalt alone, on a small generated dataset.
    #[test]
    fn every_query_runs_on_basalt() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut cfg = TsbsConfig::new(10, 24, 1_451_606_400_000, 3);
        cfg.batch_rows = 10_000;
        let parquet = dir.path().join("cpu.parquet");
        let opts = Options {
            data_dir: dir.path().join("basalt"),
            parquet: parquet.clone(),
            tsbs: cfg.clone(),
            peers_workdir: dir.path().join("peers"),
            script: PeersScript::default(),
            peers: Vec::new(),
            seed: 1,
            runs: 1,
            only: Vec::new(),
            threads: 2,
            rebuild: false,
            max_check_rows: 1000,
            dump_queries: None,
            basalt_sql: None,
        };
        let first = run(&opts)?;
        assert_eq!(first["setup"]["parquet"]["generated"], json!(true));
        assert_eq!(first["setup"]["basalt"]["published"], json!(true));
        assert_eq!(first["setup"]["basalt"]["segments"], json!(24));
        let queries = first["queries"].as_array().map_or(&[][..], Vec::as_slice);
        assert_eq!(queries.len(), 18);
        for q in queries {
            assert_eq!(q["basalt"]["error"], Value::Null, "{}", q["name"]);
            assert_eq!(q["basalt"]["ms"].as_array().map(Vec::len), Some(1));
        }
        let rows = |name: &str| {
            queries
                .iter()
                .find(|q| q["name"] == name)
                .map(|q| q["basalt"]["rows"].clone())
        };
        assert_eq!(rows("lastpoint"), Some(json!(10)));
        assert_eq!(rows("double-groupby-1"), Some(json!(24 * 10)));
        assert_eq!(rows("distinct-hosts-per-hour"), Some(json!(24)));
        assert_eq!(rows("topn-max-usage-user-12h"), Some(json!(10)));

        // Every query's Druid SQL plans and answers with as many rows as its native form.
        let engine = Engine::open(&opts.data_dir)?;
        let data = Dataset {
            hosts: cfg.hosts,
            start_ms: cfg.start_ms,
            end_ms: cfg.end_ms,
        };
        for q in tsbs_queries(&data, 1) {
            let native = engine.query_json(&q.basalt.to_string())?;
            let request = basalt_engine::sql::SqlRequest {
                query: q.druid.clone(),
                parameters: Vec::new(),
                context: serde_json::Map::new(),
            };
            let table = engine
                .sql(&request, None)
                .map_err(|e| anyhow::anyhow!("{}: {e} in {}", q.name, q.druid))?;
            assert_eq!(table.rows.len(), count_rows(&native), "{}", q.name);
        }
        drop(engine);

        // Idempotent: the second run reuses the data and publishes nothing.
        let second = run(&Options {
            only: vec!["lastpoint".to_owned()],
            ..opts.clone()
        })?;
        assert_eq!(second["setup"]["basalt"]["published"], json!(false));
        assert_eq!(second["setup"]["parquet"], Value::Null);

        let dump = dir.path().join("queries.json");
        run(&Options {
            dump_queries: Some(dump.clone()),
            ..opts
        })?;
        let list: Value = serde_json::from_str(&std::fs::read_to_string(dump)?)?;
        assert_eq!(list.as_array().map(Vec::len), Some(18));
        Ok(())
    }

    #[test]
    fn counts_rows_of_every_shape() {
        let scan = json!([{"events": [[1], [2]]}, {"events": [[3]]}]);
        assert_eq!(count_rows(&scan), 3);
        let ts = json!([{"timestamp": "x", "result": {"a": 1}}, {"timestamp": "y", "result": {}}]);
        assert_eq!(count_rows(&ts), 2);
    }
}
