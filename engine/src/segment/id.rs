//! Segment identity: (datasource, interval, version, partition).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Interval;

/// A segment version. Newer versions of an interval overshadow older ones.
///
/// Versions are microseconds since the Unix epoch at the time the version was allocated; the
/// catalog makes them strictly increasing per datasource so two publishes never tie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version(pub u64);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = (self.0 / 1000) as i64;
        let micros = self.0 % 1000;
        write!(
            f,
            "{}",
            crate::time::format_iso_millis(millis).trim_end_matches('Z')
        )?;
        write!(f, "{micros:03}Z")
    }
}

/// The identity of one immutable segment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SegmentId {
    /// Datasource the segment belongs to.
    pub datasource: String,
    /// Time chunk the segment covers (half-open, UTC milliseconds).
    pub interval: Interval,
    /// Version; higher overshadows lower for the same time.
    pub version: Version,
    /// Partition number within (datasource, interval, version).
    pub partition: u32,
}

impl fmt::Display for SegmentId {
    /// Druid-style identifier: `datasource_start_end_version[_partition]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}_{}_{}",
            self.datasource,
            crate::time::format_iso_millis(self.interval.start),
            crate::time::format_iso_millis(self.interval.end),
            self.version
        )?;
        if self.partition != 0 {
            write!(f, "_{}", self.partition)?;
        }
        Ok(())
    }
}
