//! Metric aggregators, shared by ingest-time rollup and (later) query-time aggregation.
//!
//! Null semantics follow SQL (Druid's default since 28): a sum, min or max over no non-null input
//! is null; `count` counts rows; first/last ignore null inputs and keep the value with the
//! earliest (latest) event timestamp; on equal timestamps `first` keeps the earlier-arrived
//! row and `last` the later-arrived one.

use datasketches::hll::{HllSketch, HllType, HllUnion};

use crate::error::{Error, Result};
use crate::schema::MetricKind;

/// Combine two nullable long states of a long aggregator (`count`, sum, min, max).
pub fn combine_long(kind: MetricKind, a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => Some(match kind {
            MetricKind::Count | MetricKind::LongSum => a.wrapping_add(b),
            MetricKind::LongMin => a.min(b),
            MetricKind::LongMax => a.max(b),
            _ => a,
        }),
    }
}

/// Combine two nullable double states of a double aggregator (sum, min, max).
pub fn combine_double(kind: MetricKind, a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => Some(match kind {
            MetricKind::DoubleSum => a + b,
            MetricKind::DoubleMin => a.min(b),
            MetricKind::DoubleMax => a.max(b),
            _ => a,
        }),
    }
}

/// Combine two nullable (timestamp, value) states of a first/last aggregator; `a` arrived first.
pub fn combine_pair<T: Copy>(
    kind: MetricKind,
    a: Option<(i64, T)>,
    b: Option<(i64, T)>,
) -> Option<(i64, T)> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => {
            let first = matches!(kind, MetricKind::LongFirst | MetricKind::DoubleFirst);
            if first {
                if b.0 < a.0 { Some(b) } else { Some(a) }
            } else if b.0 >= a.0 {
                Some(b)
            } else {
                Some(a)
            }
        }
    }
}

/// A new, empty HLL sketch with the given `lgK` (stored in HLL_4 form, as Druid does).
pub fn new_hll(lg_k: u8) -> Result<HllSketch> {
    HllSketch::new(lg_k, HllType::Hll4)
        .map_err(|e| Error::invalid(format!("cannot create an HLL sketch with lgK {lg_k}: {e}")))
}

/// Merge several HLL sketches into one with the given `lgK`.
pub fn merge_hll<'a>(
    lg_k: u8,
    sketches: impl IntoIterator<Item = &'a HllSketch>,
) -> Result<HllSketch> {
    let mut union = HllUnion::new(lg_k)
        .map_err(|e| Error::invalid(format!("cannot create an HLL union with lgK {lg_k}: {e}")))?;
    for s in sketches {
        union.update(s);
    }
    Ok(union.to_sketch(HllType::Hll4))
}

/// Serialize a sketch for a segment column.
pub fn serialize_hll(s: &HllSketch) -> Vec<u8> {
    s.serialize()
}

/// Deserialize a stored sketch.
pub fn deserialize_hll(bytes: &[u8]) -> Result<HllSketch> {
    HllSketch::deserialize(bytes)
        .map_err(|e| Error::invalid(format!("not a valid HLL sketch: {e}")))
}

/// Update a sketch with a string value. Numbers are added by their canonical string form so
/// `"42"` and `42` count as one value.
///
/// The value is hashed as its raw UTF-8 bytes (MurmurHash3 x64-128, as Apache DataSketches in
/// Java and C++ do) and empty strings are skipped, so sketches merge with Druid's.
pub fn hll_update_str(s: &mut HllSketch, value: &str) {
    if !value.is_empty() {
        s.update(datasketches::hash::value::raw_bytes::from_str(value));
    }
}

/// Update a union with a string value, hashed as [`hll_update_str`] does.
pub fn hll_union_update_str(u: &mut HllUnion, value: &str) {
    if !value.is_empty() {
        u.update_value(datasketches::hash::value::raw_bytes::from_str(value));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn null_semantics() {
        assert_eq!(combine_long(MetricKind::LongSum, None, None), None);
        assert_eq!(combine_long(MetricKind::LongSum, None, Some(3)), Some(3));
        assert_eq!(combine_long(MetricKind::LongMin, Some(5), Some(3)), Some(3));
        assert_eq!(
            combine_double(MetricKind::DoubleMax, Some(5.0), Some(3.0)),
            Some(5.0)
        );
        assert_eq!(
            combine_pair(MetricKind::LongFirst, Some((10, 1)), Some((10, 2))),
            Some((10, 1))
        );
        assert_eq!(
            combine_pair(MetricKind::LongLast, Some((10, 1)), Some((10, 2))),
            Some((10, 2))
        );
        assert_eq!(
            combine_pair(MetricKind::DoubleLast, Some((11, 1.0)), Some((10, 2.0))),
            Some((11, 1.0))
        );
    }

    #[test]
    fn hll_merges() {
        let mut a = new_hll(12).unwrap();
        let mut b = new_hll(12).unwrap();
        for i in 0..1000 {
            hll_update_str(&mut a, &i.to_string());
        }
        for i in 500..1500 {
            hll_update_str(&mut b, &i.to_string());
        }
        let m = merge_hll(12, [&a, &b]).unwrap();
        let est = m.estimate();
        assert!((est - 1500.0).abs() < 1500.0 * 0.05, "{est}");
        let back = deserialize_hll(&serialize_hll(&m)).unwrap();
        assert!((back.estimate() - est).abs() < 1e-9);
        assert!(deserialize_hll(&[1, 2, 3]).is_err());
    }
}
