//! Native queries: Druid's JSON query types, filters, aggregators and their execution over
//! segments. See `docs/QUERIES.md` for the supported surface.

pub mod aggregator;
pub mod exec;
pub mod filter;
pub mod granularity;
pub mod json;
pub mod post_aggregator;
pub mod scan_output;
pub mod spec;

pub use spec::Query;
