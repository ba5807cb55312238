//! Datasource administration on the engine handle: create from a Druid `dataSchema`, describe,
//! list, drop, drop an interval. The HTTP and gRPC APIs are thin wrappers over these.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::catalog::SegmentRecord;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::schema::DataSchema;
use crate::time::Interval;

/// What the engine knows about one datasource.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasourceInfo {
    /// Name.
    pub name: String,
    /// The registered spec (Druid `dataSchema` JSON); `None` for a datasource that only has
    /// segments (e.g. loaded before registration).
    pub spec: Option<Value>,
    /// Visible segments (not overshadowed), in time order.
    pub segments: Vec<SegmentRecord>,
    /// Sum of the visible segments' rows (after rollup).
    pub num_rows: u64,
    /// Sum of the visible segments' file sizes.
    pub size_bytes: u64,
}

impl Engine {
    /// Register a datasource from its Druid `dataSchema` JSON, given bare or wrapped as
    /// `{"dataSchema": {...}}`. The spec is validated first; errors name the offending field.
    /// Returns the datasource name. [`Error::AlreadyExists`] if the name is taken.
    pub fn create_datasource(&self, spec_json: &str) -> Result<String> {
        let value: Value = serde_json::from_str(spec_json)
            .map_err(|e| Error::invalid(format!("datasource spec is not valid JSON: {e}")))?;
        let spec = match value.get("dataSchema") {
            Some(inner) if value.get("dataSource").is_none() => inner.clone(),
            _ => value,
        };
        let schema = DataSchema::from_value(&spec)?;
        crate::storage::validate_datasource_name(&schema.data_source)?;
        // Stored normalized: defaults filled in, one spelling per setting.
        let text = schema.to_json().to_string();
        self.data_dir()
            .catalog()
            .create_datasource(&schema.data_source, &text)?;
        tracing::info!(datasource = %schema.data_source, "created datasource");
        Ok(schema.data_source)
    }

    /// Names of every datasource: registered ones and ones that only have segments.
    pub fn datasource_names(&self) -> Result<Vec<String>> {
        let mut names: BTreeSet<String> = self
            .data_dir()
            .catalog()
            .list_datasources()?
            .into_iter()
            .collect();
        names.extend(self.data_dir().timeline().datasources());
        Ok(names.into_iter().collect())
    }

    /// Describe one datasource. [`Error::NotFound`] if it is neither registered nor has segments.
    pub fn datasource_info(&self, name: &str) -> Result<DatasourceInfo> {
        let catalog = self.data_dir().catalog();
        let spec = catalog.get_datasource(name)?;
        // The segments queries see (overshadowed ones left out), in time order.
        let segments = self.data_dir().timeline().segments(name);
        if spec.is_none() && segments.is_empty() {
            return Err(Error::NotFound(format!(
                "datasource `{name}` does not exist"
            )));
        }
        let num_rows = segments.iter().map(|s| s.num_rows).sum();
        let size_bytes = segments.iter().map(|s| s.size_bytes).sum();
        let spec = match spec {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
                Error::Catalog(format!("stored spec of `{name}` is not JSON: {e}"))
            })?),
            None => None,
        };
        Ok(DatasourceInfo {
            name: name.to_string(),
            spec,
            segments,
            num_rows,
            size_bytes,
        })
    }

    /// Unregister a datasource and mark its segments unused. [`Error::NotFound`] if unknown.
    pub fn drop_datasource(&self, name: &str) -> Result<()> {
        self.data_dir().drop_datasource(name)
    }

    /// Mark unused every segment of `name` inside `interval` (ISO-8601 `start/end`).
    /// Returns how many segments were dropped.
    pub fn drop_interval(&self, name: &str, interval: &str) -> Result<usize> {
        let interval = Interval::parse(interval)?;
        self.drop_interval_of(name, interval)
    }

    /// [`Engine::drop_interval`] with a parsed interval.
    pub fn drop_interval_of(&self, name: &str, interval: Interval) -> Result<usize> {
        if !self.datasource_names()?.iter().any(|n| n == name) {
            return Err(Error::NotFound(format!(
                "datasource `{name}` does not exist"
            )));
        }
        self.data_dir().drop_interval(name, interval)
    }
}
