//! Druid's versioned interval timeline: which segments a query sees.
//!
//! Segments of a datasource may overlap in time. For every instant, only the segments of the
//! **highest version** whose interval covers that instant are visible — all partitions of that
//! version, and every same-version segment covering it. An older segment partly covered by newer
//! versions stays visible for the parts nobody newer covers; those parts are its *visible*
//! sub-intervals (possibly several, if newer segments punch holes in it). A segment with no
//! visible part is *overshadowed*.
//!
//! A [`Timeline`] is an immutable value built once from the catalog's used segments
//! ([`Timeline::from_records`]); queries hold an `Arc<Timeline>` snapshot from a
//! [`TimelineHandle`] for their whole run, so a publish that lands mid-query never changes what
//! that query reads (the brief's "one consistent snapshot").
//!
//! Build, per datasource: group segments into *chunks* (same interval and version, all
//! partitions), visit chunks by descending version while keeping the union of time already
//! covered by higher versions as a map of disjoint intervals; each chunk's visible parts are its
//! interval minus that union. That is `O(n log n + p)` for `n` segments and `p` visible pieces.
//! Lookup binary-searches the pieces sorted by start (with a running maximum of ends, since
//! same-version pieces may overlap) and touches only pieces that intersect the query.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::catalog::SegmentRecord;
use crate::segment::Version;
use crate::time::Interval;

/// A segment as seen by a query: the segment and the part of it that is visible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisibleSegment {
    /// The segment.
    pub record: SegmentRecord,
    /// The visible part of the segment's interval, clipped to the lookup interval. Never empty.
    pub visible: Interval,
}

/// The versioned timelines of all datasources. Immutable; cheap to clone (per-datasource
/// timelines are shared).
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    datasources: BTreeMap<String, Arc<DatasourceTimeline>>,
}

/// Segments of one (interval, version): all partitions, visible or overshadowed together.
#[derive(Debug)]
struct Chunk {
    interval: Interval,
    version: Version,
    /// Sorted by partition, no duplicates.
    segments: Vec<SegmentRecord>,
    /// Whether any part of `interval` is visible.
    visible: bool,
}

/// A maximal visible part of one chunk.
#[derive(Clone, Copy, Debug)]
struct Piece {
    visible: Interval,
    chunk: usize,
}

/// The timeline of one datasource.
#[derive(Debug)]
struct DatasourceTimeline {
    /// Sorted by (start, end, version).
    chunks: Vec<Chunk>,
    /// Sorted by (visible.start, version, chunk).
    pieces: Vec<Piece>,
    /// `max_end[i]` = max of `pieces[..=i].visible.end`; non-decreasing, for binary search.
    max_end: Vec<i64>,
    num_segments: usize,
}

impl Timeline {
    /// An empty timeline.
    pub fn new() -> Timeline {
        Timeline::default()
    }

    /// Build the timeline of the given segments (normally the catalog's used segments).
    ///
    /// Records with an empty interval cover no time and are ignored; a repeated id counts once.
    pub fn from_records(records: impl IntoIterator<Item = SegmentRecord>) -> Timeline {
        let mut by_ds: HashMap<String, Vec<SegmentRecord>> = HashMap::new();
        for rec in records {
            by_ds
                .entry(rec.id.datasource.clone())
                .or_default()
                .push(rec);
        }
        let datasources = by_ds
            .into_iter()
            .filter_map(|(ds, recs)| {
                let tl = DatasourceTimeline::build(recs);
                (tl.num_segments > 0).then(|| (ds, Arc::new(tl)))
            })
            .collect();
        Timeline { datasources }
    }

    /// A copy of this timeline with `datasource`'s segments replaced by `records` (which must
    /// all belong to it; others are ignored). Other datasources are shared, not rebuilt, so a
    /// publish costs time proportional to the datasource it touches.
    pub fn with_datasource(
        &self,
        datasource: &str,
        records: impl IntoIterator<Item = SegmentRecord>,
    ) -> Timeline {
        let recs: Vec<_> = records
            .into_iter()
            .filter(|r| r.id.datasource == datasource)
            .collect();
        let mut datasources = self.datasources.clone();
        let tl = DatasourceTimeline::build(recs);
        if tl.num_segments == 0 {
            datasources.remove(datasource);
        } else {
            datasources.insert(datasource.to_string(), Arc::new(tl));
        }
        Timeline { datasources }
    }

    /// Whether `datasource` has the very same segments in both timelines (a publish to it
    /// makes a new per-datasource timeline; publishes to others share it).
    pub fn same_datasource(&self, other: &Timeline, datasource: &str) -> bool {
        match (
            self.datasources.get(datasource),
            other.datasources.get(datasource),
        ) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    /// Names of datasources with at least one segment, sorted.
    pub fn datasources(&self) -> Vec<String> {
        self.datasources.keys().cloned().collect()
    }

    /// Whether the timeline has no segments at all.
    pub fn is_empty(&self) -> bool {
        self.datasources.is_empty()
    }

    /// Number of segments (visible or overshadowed) of one datasource, or of all with `None`.
    pub fn num_segments(&self, datasource: Option<&str>) -> usize {
        match datasource {
            Some(ds) => self.datasources.get(ds).map_or(0, |t| t.num_segments),
            None => self.datasources.values().map(|t| t.num_segments).sum(),
        }
    }

    /// The segments a query over `interval` reads, each with its visible part within `interval`.
    ///
    /// A segment whose visible part is split by newer versions appears once per part. Sorted by
    /// (visible.start, version, partition). Unknown datasource or empty interval: empty.
    pub fn lookup(&self, datasource: &str, interval: Interval) -> Vec<VisibleSegment> {
        let Some(tl) = self.datasources.get(datasource) else {
            return Vec::new();
        };
        if interval.is_empty() {
            return Vec::new();
        }
        // Pieces starting before the query's end...
        let hi = tl
            .pieces
            .partition_point(|p| p.visible.start < interval.end);
        // ...and not all of whose predecessors end at or before the query's start.
        let lo = tl.max_end[..hi].partition_point(|&end| end <= interval.start);
        let mut out = Vec::new();
        for piece in &tl.pieces[lo..hi] {
            let Some(visible) = piece.visible.intersect(&interval) else {
                continue;
            };
            for rec in &tl.chunks[piece.chunk].segments {
                out.push(VisibleSegment {
                    record: rec.clone(),
                    visible,
                });
            }
        }
        out.sort_by_key(visible_order);
        out
    }

    /// Every segment of `datasource` with at least one visible instant, sorted by
    /// (interval start, version, partition). Use [`Timeline::lookup`] for the visible parts.
    pub fn segments(&self, datasource: &str) -> Vec<SegmentRecord> {
        self.chunk_segments(datasource, true)
    }

    /// Every segment of `datasource` fully overshadowed by newer versions (nothing visible),
    /// sorted by (interval start, version, partition). Candidates to mark unused.
    pub fn overshadowed(&self, datasource: &str) -> Vec<SegmentRecord> {
        self.chunk_segments(datasource, false)
    }

    fn chunk_segments(&self, datasource: &str, visible: bool) -> Vec<SegmentRecord> {
        let Some(tl) = self.datasources.get(datasource) else {
            return Vec::new();
        };
        let mut out: Vec<SegmentRecord> = tl
            .chunks
            .iter()
            .filter(|c| c.visible == visible)
            .flat_map(|c| c.segments.iter().cloned())
            .collect();
        out.sort_by_key(record_order);
        out
    }
}

/// Sort key of lookup results: (visible.start, version, partition), then the rest for
/// determinism.
fn visible_order(v: &VisibleSegment) -> (i64, Version, u32, i64, i64, i64) {
    let id = &v.record.id;
    (
        v.visible.start,
        id.version,
        id.partition,
        id.interval.start,
        id.interval.end,
        v.visible.end,
    )
}

/// Sort key of segment lists: (interval start, version, partition, interval end).
fn record_order(r: &SegmentRecord) -> (i64, Version, u32, i64) {
    (
        r.id.interval.start,
        r.id.version,
        r.id.partition,
        r.id.interval.end,
    )
}

impl DatasourceTimeline {
    fn build(mut records: Vec<SegmentRecord>) -> DatasourceTimeline {
        records.retain(|r| !r.id.interval.is_empty());
        records.sort_by(|a, b| {
            let (a, b) = (&a.id, &b.id);
            (a.interval.start, a.interval.end, a.version, a.partition).cmp(&(
                b.interval.start,
                b.interval.end,
                b.version,
                b.partition,
            ))
        });
        records.dedup_by(|a, b| a.id == b.id);
        let num_segments = records.len();

        let mut chunks: Vec<Chunk> = Vec::new();
        for rec in records {
            match chunks.last_mut() {
                Some(c) if c.interval == rec.id.interval && c.version == rec.id.version => {
                    c.segments.push(rec);
                }
                _ => chunks.push(Chunk {
                    interval: rec.id.interval,
                    version: rec.id.version,
                    segments: vec![rec],
                    visible: false,
                }),
            }
        }

        // Visit chunks by descending version; `covered` holds time owned by strictly higher
        // versions, so same-version chunks never hide each other.
        let mut order: Vec<usize> = (0..chunks.len()).collect();
        order.sort_by(|&a, &b| chunks[b].version.cmp(&chunks[a].version).then(a.cmp(&b)));
        let mut covered = Coverage::default();
        let mut pieces = Vec::new();
        let mut group_start = 0;
        while group_start < order.len() {
            let version = chunks[order[group_start]].version;
            let group_end = order[group_start..]
                .iter()
                .position(|&c| chunks[c].version != version)
                .map_or(order.len(), |n| group_start + n);
            for &c in &order[group_start..group_end] {
                let before = pieces.len();
                covered.subtract(chunks[c].interval, |visible| {
                    pieces.push(Piece { visible, chunk: c });
                });
                chunks[c].visible = pieces.len() > before;
            }
            for &c in &order[group_start..group_end] {
                covered.insert(chunks[c].interval);
            }
            group_start = group_end;
        }

        pieces.sort_by(|a, b| {
            (a.visible.start, chunks[a.chunk].version, a.chunk).cmp(&(
                b.visible.start,
                chunks[b.chunk].version,
                b.chunk,
            ))
        });
        let mut max_end = Vec::with_capacity(pieces.len());
        let mut running = i64::MIN;
        for p in &pieces {
            running = running.max(p.visible.end);
            max_end.push(running);
        }
        DatasourceTimeline {
            chunks,
            pieces,
            max_end,
            num_segments,
        }
    }
}

/// A union of half-open intervals kept as disjoint, non-touching `start -> end` entries.
#[derive(Debug, Default)]
struct Coverage {
    spans: BTreeMap<i64, i64>,
}

impl Coverage {
    /// Call `emit` with each maximal part of `iv` not covered, in order.
    fn subtract(&self, iv: Interval, mut emit: impl FnMut(Interval)) {
        let mut cursor = iv.start;
        // The span starting at or before `iv.start` may reach into it.
        if let Some((_, &end)) = self.spans.range(..=iv.start).next_back() {
            cursor = cursor.max(end);
        }
        if cursor < iv.end {
            for (&start, &end) in self.spans.range(cursor..iv.end) {
                if start > cursor {
                    emit(Interval {
                        start: cursor,
                        end: start,
                    });
                }
                cursor = cursor.max(end);
                if cursor >= iv.end {
                    break;
                }
            }
        }
        if cursor < iv.end {
            emit(Interval {
                start: cursor,
                end: iv.end,
            });
        }
    }

    /// Add `iv` to the union, merging overlapping and touching spans.
    fn insert(&mut self, iv: Interval) {
        let (mut start, mut end) = (iv.start, iv.end);
        if let Some((&s, &e)) = self.spans.range(..start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
            self.spans.remove(&s);
        }
        while let Some((&s, &e)) = self.spans.range(start..=end).next() {
            end = end.max(e);
            self.spans.remove(&s);
        }
        self.spans.insert(start, end);
    }
}

/// The current timeline, swapped atomically on publish; readers take [`TimelineHandle::snapshot`].
pub struct TimelineHandle {
    current: RwLock<Arc<Timeline>>,
}

impl fmt::Debug for TimelineHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tl = self.snapshot();
        f.debug_struct("TimelineHandle")
            .field("datasources", &tl.datasources.len())
            .field("segments", &tl.num_segments(None))
            .finish()
    }
}

impl Default for TimelineHandle {
    fn default() -> Self {
        TimelineHandle::new(Timeline::default())
    }
}

impl TimelineHandle {
    /// A handle whose current timeline is `timeline`.
    pub fn new(timeline: Timeline) -> TimelineHandle {
        TimelineHandle {
            current: RwLock::new(Arc::new(timeline)),
        }
    }

    /// The current timeline. It never changes: later [`TimelineHandle::replace`] calls install
    /// a new value and leave this one to the readers holding it.
    pub fn snapshot(&self) -> Arc<Timeline> {
        Arc::clone(&self.current.read())
    }

    /// Install a new current timeline.
    pub fn replace(&self, timeline: Arc<Timeline>) {
        *self.current.write() = timeline;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use proptest::prelude::*;

    use super::*;
    use crate::segment::SegmentId;

    fn iv(start: i64, end: i64) -> Interval {
        Interval { start, end }
    }

    fn rec(ds: &str, start: i64, end: i64, version: u64, partition: u32) -> SegmentRecord {
        SegmentRecord {
            id: SegmentId {
                datasource: ds.to_string(),
                interval: iv(start, end),
                version: Version(version),
                partition,
            },
            path: format!("{ds}/{start}_{end}/{version}/{partition}"),
            size_bytes: 0,
            num_rows: 0,
        }
    }

    /// (start, end, version, partition, visible.start, visible.end) of each result.
    fn summary(v: &[VisibleSegment]) -> Vec<(i64, i64, u64, u32, i64, i64)> {
        v.iter()
            .map(|s| {
                let id = &s.record.id;
                (
                    id.interval.start,
                    id.interval.end,
                    id.version.0,
                    id.partition,
                    s.visible.start,
                    s.visible.end,
                )
            })
            .collect()
    }

    const ALL: Interval = Interval::ETERNITY;

    #[test]
    fn partial_overshadow_splits_older_segment() {
        let tl = Timeline::from_records([rec("ds", 0, 100, 1, 0), rec("ds", 40, 60, 2, 0)]);
        assert_eq!(
            summary(&tl.lookup("ds", ALL)),
            vec![
                (0, 100, 1, 0, 0, 40),
                (40, 60, 2, 0, 40, 60),
                (0, 100, 1, 0, 60, 100)
            ]
        );
        // Clipped to the lookup interval; only intersecting parts.
        assert_eq!(
            summary(&tl.lookup("ds", iv(50, 70))),
            vec![(40, 60, 2, 0, 50, 60), (0, 100, 1, 0, 60, 70)]
        );
        assert_eq!(
            summary(&tl.lookup("ds", iv(45, 55))),
            vec![(40, 60, 2, 0, 45, 55)]
        );
        assert!(tl.lookup("ds", iv(100, 200)).is_empty());
        assert!(tl.lookup("ds", iv(50, 50)).is_empty());
        assert!(tl.lookup("nope", ALL).is_empty());
        assert!(tl.overshadowed("ds").is_empty());
        assert_eq!(tl.segments("ds").len(), 2);
    }

    #[test]
    fn equal_intervals_newer_version_wins() {
        let tl = Timeline::from_records([
            rec("ds", 0, 10, 1, 0),
            rec("ds", 0, 10, 3, 0),
            rec("ds", 0, 10, 2, 0),
        ]);
        assert_eq!(summary(&tl.lookup("ds", ALL)), vec![(0, 10, 3, 0, 0, 10)]);
        let over: Vec<u64> = tl
            .overshadowed("ds")
            .iter()
            .map(|r| r.id.version.0)
            .collect();
        assert_eq!(over, vec![1, 2]);
        assert_eq!(tl.segments("ds"), vec![rec("ds", 0, 10, 3, 0)]);
    }

    #[test]
    fn all_partitions_of_the_winning_version_are_visible() {
        let tl = Timeline::from_records([
            rec("ds", 0, 10, 1, 0),
            rec("ds", 0, 10, 1, 1),
            rec("ds", 0, 10, 2, 2),
            rec("ds", 0, 10, 2, 0),
            rec("ds", 0, 10, 2, 1),
            rec("ds", 10, 20, 1, 0),
        ]);
        assert_eq!(
            summary(&tl.lookup("ds", iv(5, 15))),
            vec![
                (0, 10, 2, 0, 5, 10),
                (0, 10, 2, 1, 5, 10),
                (0, 10, 2, 2, 5, 10),
                (10, 20, 1, 0, 10, 15)
            ]
        );
        assert_eq!(tl.overshadowed("ds").len(), 2);
    }

    #[test]
    fn newer_coarse_segment_overshadows_finer_older_ones() {
        let tl = Timeline::from_records([
            rec("ds", 0, 10, 1, 0),
            rec("ds", 10, 20, 1, 0),
            rec("ds", 20, 30, 1, 0),
            rec("ds", 0, 20, 2, 0),
        ]);
        assert_eq!(
            summary(&tl.lookup("ds", ALL)),
            vec![(0, 20, 2, 0, 0, 20), (20, 30, 1, 0, 20, 30)]
        );
        assert_eq!(tl.overshadowed("ds").len(), 2);
    }

    #[test]
    fn datasources_are_independent() {
        let tl = Timeline::from_records([rec("a", 0, 10, 1, 0), rec("b", 0, 10, 2, 0)]);
        assert_eq!(tl.datasources(), vec!["a", "b"]);
        assert_eq!(summary(&tl.lookup("a", ALL)), vec![(0, 10, 1, 0, 0, 10)]);
        let tl2 = tl.with_datasource("a", [rec("a", 0, 10, 5, 0)]);
        assert_eq!(summary(&tl2.lookup("a", ALL)), vec![(0, 10, 5, 0, 0, 10)]);
        assert_eq!(summary(&tl2.lookup("b", ALL)), vec![(0, 10, 2, 0, 0, 10)]);
        assert_eq!(summary(&tl.lookup("a", ALL)), vec![(0, 10, 1, 0, 0, 10)]);
        let tl3 = tl2.with_datasource("b", []);
        assert_eq!(tl3.datasources(), vec!["a"]);
        assert_eq!(tl3.num_segments(None), 1);
    }

    #[test]
    fn snapshot_isolation() {
        let handle = TimelineHandle::new(Timeline::from_records([rec("ds", 0, 10, 1, 0)]));
        let before = handle.snapshot();
        let next = before.with_datasource("ds", [rec("ds", 0, 10, 1, 0), rec("ds", 0, 10, 2, 0)]);
        handle.replace(Arc::new(next));
        // The old snapshot still answers as before; new snapshots see the publish.
        assert_eq!(
            summary(&before.lookup("ds", ALL)),
            vec![(0, 10, 1, 0, 0, 10)]
        );
        assert_eq!(
            summary(&handle.snapshot().lookup("ds", ALL)),
            vec![(0, 10, 2, 0, 0, 10)]
        );
        // Readers on other threads see either the old or the new timeline, never a mix.
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                for _ in 0..1000 {
                    let got = summary(&handle.snapshot().lookup("ds", ALL));
                    assert_eq!(got.len(), 1);
                    assert!(got[0].2 >= 2);
                }
            });
            for v in 3..50 {
                let tl = Timeline::from_records([rec("ds", 0, 10, 1, 0), rec("ds", 0, 10, v, 0)]);
                handle.replace(Arc::new(tl));
            }
            reader.join().unwrap();
        });
    }

    #[test]
    fn many_segments_build_and_lookup() {
        // 100k hourly segments, 4 partitions, every 10th day recompacted at a newer version.
        const HOUR: i64 = 3_600_000;
        let mut recs = Vec::new();
        for h in 0..25_000i64 {
            for p in 0..4 {
                recs.push(rec("ds", h * HOUR, (h + 1) * HOUR, 1, p));
            }
        }
        for d in (0..25_000 / 24).step_by(10) {
            recs.push(rec("ds", d * 24 * HOUR, (d + 1) * 24 * HOUR, 2, 0));
        }
        let start = std::time::Instant::now();
        let tl = Timeline::from_records(recs);
        let built = start.elapsed();
        let start = std::time::Instant::now();
        let day = tl.lookup("ds", iv(24 * HOUR, 48 * HOUR));
        let day0 = tl.lookup("ds", iv(0, 24 * HOUR));
        let looked = start.elapsed();
        eprintln!("timeline 100k: build {built:?}, two day lookups {looked:?}");
        assert_eq!(day.len(), 96);
        assert_eq!(day0.len(), 1);
        assert_eq!(tl.overshadowed("ds").len(), 105 * 96);
    }

    /// Naive reference: at each integer instant, the segments of the highest covering version.
    fn reference_visible(recs: &[SegmentRecord], q: Interval) -> BTreeSet<(SegmentId, i64)> {
        let mut out = BTreeSet::new();
        for t in q.start..q.end {
            let covering: Vec<&SegmentRecord> = recs
                .iter()
                .filter(|r| r.id.interval.start <= t && t < r.id.interval.end)
                .collect();
            if let Some(max) = covering.iter().map(|r| r.id.version).max() {
                for r in covering.into_iter().filter(|r| r.id.version == max) {
                    out.insert((r.id.clone(), t));
                }
            }
        }
        out
    }

    fn arb_records() -> impl Strategy<Value = Vec<SegmentRecord>> {
        prop::collection::vec((0i64..30, 1i64..12, 1u64..5, 0u32..3), 0..25).prop_map(|v| {
            v.into_iter()
                .map(|(start, len, version, partition)| {
                    rec("ds", start, start + len, version, partition)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn lookup_matches_reference(recs in arb_records(), qs in -2i64..45, ql in 0i64..45) {
            let mut unique = recs.clone();
            unique.sort_by(|a, b| a.id.cmp(&b.id));
            unique.dedup_by(|a, b| a.id == b.id);
            let q = iv(qs, qs + ql);
            let tl = Timeline::from_records(recs);
            let got = tl.lookup("ds", q);

            // Same (segment, instant) pairs as the reference, each exactly once.
            let mut pairs = BTreeSet::new();
            for v in &got {
                prop_assert!(v.visible.start < v.visible.end);
                prop_assert!(v.visible.start >= q.start && v.visible.end <= q.end);
                prop_assert!(v.visible.start >= v.record.id.interval.start);
                prop_assert!(v.visible.end <= v.record.id.interval.end);
                for t in v.visible.start..v.visible.end {
                    prop_assert!(pairs.insert((v.record.id.clone(), t)), "instant {} twice", t);
                }
            }
            prop_assert_eq!(&pairs, &reference_visible(&unique, q));

            // Pieces of one segment are maximal (never touching) and results are ordered.
            for (i, a) in got.iter().enumerate() {
                for b in &got[i + 1..] {
                    if a.record.id == b.record.id {
                        prop_assert!(a.visible.end < b.visible.start || b.visible.end < a.visible.start);
                    }
                }
            }
            let keys: Vec<_> = got.iter().map(|v| (v.visible.start, v.record.id.version, v.record.id.partition)).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            prop_assert_eq!(keys, sorted);

            // segments() / overshadowed() partition the segments by "visible somewhere".
            let everywhere = reference_visible(&unique, iv(0, 50));
            let seen: HashSet<SegmentId> = everywhere.into_iter().map(|(id, _)| id).collect();
            let visible: HashSet<SegmentId> = tl.segments("ds").into_iter().map(|r| r.id).collect();
            let over: HashSet<SegmentId> = tl.overshadowed("ds").into_iter().map(|r| r.id).collect();
            prop_assert_eq!(&visible, &seen);
            let all: HashSet<SegmentId> = unique.iter().map(|r| r.id.clone()).collect();
            let expected_over: HashSet<SegmentId> = all.difference(&seen).cloned().collect();
            prop_assert_eq!(over, expected_over);
            prop_assert_eq!(tl.num_segments(Some("ds")), unique.len());
        }

        #[test]
        fn coverage_matches_reference(spans in prop::collection::vec((0i64..40, 0i64..8), 0..12),
                                      probe in (0i64..40, 0i64..12)) {
            let mut cov = Coverage::default();
            let mut covered = BTreeSet::new();
            for (s, l) in spans {
                if l > 0 {
                    cov.insert(iv(s, s + l));
                    covered.extend(s..s + l);
                }
            }
            // Spans stay disjoint and non-touching.
            let mut prev_end = i64::MIN;
            for (&s, &e) in &cov.spans {
                prop_assert!(s < e && s > prev_end);
                prev_end = e;
            }
            let q = iv(probe.0, probe.0 + probe.1);
            let mut uncovered = BTreeSet::new();
            cov.subtract(q, |p| uncovered.extend(p.start..p.end));
            let expected: BTreeSet<i64> = (q.start..q.end).filter(|t| !covered.contains(t)).collect();
            prop_assert_eq!(uncovered, expected);
        }
    }
}
