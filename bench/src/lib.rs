//! Basalt's benchmark runner: named workloads, JSON results, peers run side by side.
//!
//! - [`tsbs`]: the TSBS devops "cpu-only" dataset, generated straight into Arrow batches.
//! - [`tsbs_files`]: writing that data as Parquet or CSV.
//! - [`source`]: input streams for workloads (Parquet files).
//! - [`build_segments`]: the `build-segments` workload (Basalt's segment writer, hourly).
//! - [`load_bench`]: the `load` workload (`basalt load` at two input sizes, peers side by side).
//! - [`chunking`]: cutting a time-ordered stream into segment-sized chunks; a worker pool.
//! - [`prefetch`]: running a producer on its own thread, ahead of the measured work.
//! - [`peers`]: driving `bench/peers.py` (DuckDB, ClickHouse via chdb).
//! - [`queries`]: the `tsbs-queries` workload (TSBS queries on Basalt and the peers).
//! - [`push_bench`]: the `push` workload (realtime pushes over gRPC, HTTP and in-process).
//! - [`report`]: machine info, peak memory and the results files.
//!
//! See `bench/README.md` for the workloads and commands.

pub mod build_segments;
pub mod chunking;
pub mod load_bench;
pub mod peers;
pub mod prefetch;
pub mod push_bench;
pub mod queries;
pub mod report;
pub mod server_load;
pub mod source;
pub mod timefmt;
pub mod tsbs;
pub mod tsbs_files;
