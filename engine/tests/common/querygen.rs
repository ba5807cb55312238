//! Random native queries over the generated datasources (see [`super::datagen`]).
//!
//! Every query type; filters of every type nested up to depth 3 with values drawn from the data
//! and some absent ones (and null selectors); random aggregator subsets with filtered
//! aggregators and post-aggregators; granularities `all`, `minute`, `hour`, `day`, `week`,
//! `PT30M`, periods with a fixed-offset time zone or an origin, `duration`; intervals covering
//! the data, cutting through segments, disjoint pairs, in the period forms, and empty ones.

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::datagen::{DAY, Domains, HOUR, RATIOS, REGIONS, T0, TAGS};
use super::reference::{druid_double_string, iso};

/// A generator for one datasource.
#[derive(Debug)]
pub struct QueryGen<'a> {
    /// Datasource name.
    pub ds: &'a str,
    /// Value domains.
    pub dom: &'a Domains,
    /// Random source.
    pub rng: StdRng,
}

/// What an aggregator produces, for choosing post-aggregators and orderings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AggClass {
    /// count, sums, min, max: a plain number (possibly null).
    Plain,
    /// first/last: possibly one of several values.
    FirstLast,
    /// An HLL or cardinality estimate; `true` for unrounded hyperUnique.
    Sketch(bool),
}

/// An aggregator: output name, JSON and what it produces.
type NamedAgg = (String, Value, AggClass);

fn pick<'b, T>(rng: &mut StdRng, xs: &'b [T]) -> &'b T {
    &xs[rng.random_range(0..xs.len())]
}

const STRING_DIMS: [&str; 3] = ["region", "host", "tags"];

impl QueryGen<'_> {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn string_values(&self, dim: &str) -> Vec<String> {
        match dim {
            "region" => REGIONS
                .iter()
                .map(|s| s.to_string())
                .chain(["zz-none".into(), "us".into()])
                .collect(),
            "host" => self
                .dom
                .hosts
                .iter()
                .cloned()
                .chain(["host-999".into(), "HOST-001".into()])
                .collect(),
            "tags" => TAGS
                .iter()
                .map(|s| s.to_string())
                .chain(["t9".into()])
                .collect(),
            other => panic!("{other}"),
        }
    }

    fn string_value(&mut self, dim: &str) -> String {
        let vals = self.string_values(dim);
        pick(&mut self.rng, &vals).clone()
    }

    fn code(&mut self) -> i64 {
        if self.chance(0.1) {
            *pick(&mut self.rng, &[999, -100])
        } else {
            let c = self.dom.codes.clone();
            *pick(&mut self.rng, &c)
        }
    }

    fn ratio(&mut self) -> f64 {
        if self.chance(0.1) {
            3.25
        } else {
            *pick(&mut self.rng, &RATIOS)
        }
    }

    /// A random instant around the data (minute-aligned half the time).
    fn instant(&mut self) -> i64 {
        let (lo, hi) = self.dom.time_range;
        let t = self.rng.random_range(lo - 2 * HOUR..hi + 2 * HOUR);
        if self.chance(0.5) {
            t - t.rem_euclid(60_000)
        } else {
            t
        }
    }

    fn interval_text(&mut self, s: i64, e: i64) -> String {
        if (e - s) % HOUR == 0 && e > s && self.chance(0.2) {
            format!("{}/PT{}H", iso(s), (e - s) / HOUR)
        } else if (e - s) % DAY == 0 && e > s && self.chance(0.3) {
            format!("{}/P{}D", iso(s), (e - s) / DAY)
        } else {
            format!("{}/{}", iso(s), iso(e))
        }
    }

    /// Raw interval list (non-overlapping, ascending).
    fn interval_list(&mut self) -> Vec<(i64, i64)> {
        let (lo, hi) = self.dom.time_range;
        match self.rng.random_range(0..10) {
            0..=2 => vec![(lo, hi)],
            3 => vec![(lo - DAY, hi + DAY)],
            4 => {
                // Empty: no data there.
                let s = hi + self.rng.random_range(1..5) * DAY;
                vec![(s, s + HOUR * self.rng.random_range(1..30))]
            }
            5 => {
                let mut ts = [
                    self.instant(),
                    self.instant(),
                    self.instant(),
                    self.instant(),
                ];
                ts.sort();
                if ts[0] == ts[1] || ts[2] == ts[3] || ts[1] == ts[2] {
                    vec![(lo, hi)]
                } else {
                    vec![(ts[0], ts[1]), (ts[2], ts[3])]
                }
            }
            6 => {
                // Whole days or hours of the data.
                let d = self.rng.random_range(0..3);
                let h = self.rng.random_range(0..24);
                if self.chance(0.5) {
                    vec![(T0 + d * DAY, T0 + (d + 1) * DAY)]
                } else {
                    vec![(T0 + d * DAY + h * HOUR, T0 + d * DAY + (h + 3) * HOUR)]
                }
            }
            _ => {
                let a = self.instant();
                let b = self.instant();
                if a == b {
                    vec![(lo, hi)]
                } else {
                    vec![(a.min(b), a.max(b))]
                }
            }
        }
    }

    fn intervals(&mut self) -> Value {
        let list = self.interval_list();
        let texts: Vec<String> = list
            .iter()
            .map(|&(s, e)| self.interval_text(s, e))
            .collect();
        match self.rng.random_range(0..4) {
            0 if texts.len() == 1 => json!(texts[0]),
            1 => json!({"type": "intervals", "intervals": texts}),
            _ => json!(texts),
        }
    }

    fn datasource(&mut self) -> Value {
        if self.chance(0.2) {
            json!({"type": "table", "name": self.ds})
        } else {
            json!(self.ds)
        }
    }

    /// A granularity; `fine` allows minute buckets.
    fn granularity(&mut self, fine: bool) -> Value {
        let n = self.rng.random_range(0..16);
        match n {
            0..=3 => json!("all"),
            4 => json!("hour"),
            5 => json!("day"),
            6 => json!("week"),
            7 => json!("fifteen_minute"),
            8 if fine => json!("minute"),
            8 => json!("six_hour"),
            9 => json!({"type": "period", "period": "PT30M"}),
            10 => json!({"type": "period", "period": "P1D", "timeZone": "Etc/GMT-2"}),
            11 => json!({"type": "period", "period": "PT1H", "timeZone": "Etc/GMT+5"}),
            12 => json!({"type": "period", "period": "PT1H", "origin": "2024-01-01T00:20:00Z"}),
            13 => {
                json!({"type": "duration", "duration": 2 * HOUR, "origin": "2024-01-01T00:30:00Z"})
            }
            14 => json!({"type": "period", "period": "P1W", "timeZone": "Etc/GMT-2"}),
            _ if self.chance(0.5) => json!({"type": "hour"}),
            _ => json!("month"),
        }
    }

    // ------------------------------------------------------------------------------------------
    // Filters
    // ------------------------------------------------------------------------------------------

    /// A random filter, nested up to `depth` more levels.
    pub fn filter(&mut self, depth: u32) -> Value {
        if depth > 0 && self.chance(0.35) {
            return match self.rng.random_range(0..3) {
                0 => {
                    let n = self.rng.random_range(2..=3);
                    json!({"type": "and", "fields": (0..n).map(|_| self.filter(depth - 1)).collect::<Vec<_>>()})
                }
                1 => {
                    let n = self.rng.random_range(2..=3);
                    json!({"type": "or", "fields": (0..n).map(|_| self.filter(depth - 1)).collect::<Vec<_>>()})
                }
                _ => json!({"type": "not", "field": self.filter(depth - 1)}),
            };
        }
        self.leaf_filter()
    }

    fn like_pattern(&mut self, v: &str) -> (String, bool) {
        let chars: Vec<char> = v.chars().collect();
        let mut escape = false;
        let mut out = String::new();
        let start = if self.chance(0.4) {
            self.rng.random_range(0..chars.len().max(1))
        } else {
            0
        };
        let end = if self.chance(0.4) {
            self.rng.random_range(start..=chars.len())
        } else {
            chars.len()
        };
        if start > 0 {
            out.push('%');
        }
        for &c in &chars[start..end] {
            if (c == '_' || c == '%') && self.chance(0.7) {
                out.push('\\');
                escape = true;
                out.push(c);
            } else if self.chance(0.1) {
                out.push('_');
            } else {
                out.push(c);
            }
        }
        if end < chars.len() || self.chance(0.1) {
            out.push('%');
        }
        (out, escape)
    }

    fn regex_pattern(&mut self, v: &str) -> String {
        let chars: Vec<char> = v.chars().collect();
        let start = self.rng.random_range(0..chars.len());
        let end = self.rng.random_range(start + 1..=chars.len());
        let mut out = String::new();
        let anchored = start == 0 && self.chance(0.5);
        if anchored {
            out.push('^');
        }
        for &c in &chars[start..end] {
            match self.rng.random_range(0..12) {
                0 => out.push('.'),
                1 if c.is_ascii_digit() => out.push_str("\\d"),
                2 if c.is_ascii_digit() => out.push_str("[0-9]+"),
                3 if c.is_ascii_lowercase() => out.push_str("[a-z]"),
                _ if c.is_ascii_alphanumeric() || c == '-' || c == '_' => out.push(c),
                _ => {
                    out.push('\\');
                    out.push(c);
                }
            }
        }
        if end == chars.len() && self.chance(0.4) {
            out.push('$');
        }
        if self.chance(0.15) {
            out.push_str(".*");
        }
        out
    }

    fn leaf_filter(&mut self) -> Value {
        let dim = *pick(&mut self.rng, &STRING_DIMS);
        match self.rng.random_range(0..30) {
            0..=3 => {
                let value = if self.chance(0.1) {
                    Value::Null
                } else {
                    json!(self.string_value(dim))
                };
                json!({"type": "selector", "dimension": dim, "value": value})
            }
            4 => json!({"type": "selector", "dimension": "code", "value": self.code().to_string()}),
            5 => {
                json!({"type": "selector", "dimension": "ratio", "value": druid_double_string(self.ratio())})
            }
            6 => {
                json!({"type": "equals", "column": dim, "matchValueType": "STRING", "matchValue": self.string_value(dim)})
            }
            7 => {
                json!({"type": "equals", "column": "code", "matchValueType": "LONG", "matchValue": self.code()})
            }
            8 => {
                json!({"type": "equals", "column": "ratio", "matchValueType": "DOUBLE", "matchValue": self.ratio()})
            }
            9..=11 => {
                let n = self.rng.random_range(1..=4);
                let mut values: Vec<Value> =
                    (0..n).map(|_| json!(self.string_value(dim))).collect();
                if self.chance(0.15) {
                    values.push(Value::Null);
                }
                json!({"type": "in", "dimension": dim, "values": values})
            }
            12 => {
                let values: Vec<Value> = (0..self.rng.random_range(1..=4))
                    .map(|_| json!(self.code().to_string()))
                    .collect();
                json!({"type": "in", "dimension": "code", "values": values})
            }
            13..=14 => {
                let (a, b) = (self.string_value(dim), self.string_value(dim));
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let mut f = json!({"type": "bound", "dimension": dim, "lowerStrict": self.chance(0.5), "upperStrict": self.chance(0.5)});
                if self.chance(0.8) {
                    f["lower"] = json!(lo);
                }
                if self.chance(0.8) {
                    f["upper"] = json!(hi);
                }
                if self.chance(0.3) {
                    f["ordering"] = json!("lexicographic");
                }
                f
            }
            15 => {
                let (col, lo, hi) = match self.rng.random_range(0..4) {
                    0 => ("code", self.code().to_string(), self.code().to_string()),
                    1 => (
                        "ratio",
                        druid_double_string(self.ratio()),
                        druid_double_string(self.ratio()),
                    ),
                    2 => (
                        "sum_val",
                        self.rng.random_range(-50..1000).to_string(),
                        self.rng.random_range(0..3000).to_string(),
                    ),
                    _ => (
                        "__time",
                        self.instant().to_string(),
                        self.instant().to_string(),
                    ),
                };
                let mut f = json!({"type": "bound", "dimension": col, "ordering": "numeric",
                    "lowerStrict": self.chance(0.5), "upperStrict": self.chance(0.5)});
                if self.chance(0.8) {
                    f["lower"] = json!(lo);
                }
                if self.chance(0.8) {
                    f["upper"] = json!(hi);
                }
                f
            }
            16..=17 => {
                let (col, ty, lo, hi) = match self.rng.random_range(0..6) {
                    0 | 1 => {
                        let (a, b) = (self.string_value(dim), self.string_value(dim));
                        (
                            dim,
                            "STRING",
                            json!(a.clone().min(b.clone())),
                            json!(a.max(b)),
                        )
                    }
                    2 => {
                        let (a, b) = (self.code(), self.code());
                        ("code", "LONG", json!(a.min(b)), json!(a.max(b)))
                    }
                    3 => ("ratio", "DOUBLE", json!(self.ratio()), json!(self.ratio())),
                    4 => (
                        "sum_amt",
                        "DOUBLE",
                        json!(self.rng.random_range(-50.0..500.0)),
                        json!(self.rng.random_range(0.0..3000.0)),
                    ),
                    _ => {
                        let (a, b) = (self.instant(), self.instant());
                        ("__time", "LONG", json!(a.min(b)), json!(a.max(b)))
                    }
                };
                let mut f = json!({"type": "range", "column": col, "matchValueType": ty,
                    "lowerOpen": self.chance(0.5), "upperOpen": self.chance(0.5)});
                if self.chance(0.8) {
                    f["lower"] = lo;
                }
                if self.chance(0.8) {
                    f["upper"] = hi;
                }
                f
            }
            18..=20 => {
                let v = self.string_value(dim);
                let (pattern, escape) = self.like_pattern(&v);
                let mut f = json!({"type": "like", "dimension": dim, "pattern": pattern});
                if escape {
                    f["escape"] = json!("\\");
                }
                f
            }
            21 => {
                json!({"type": "like", "dimension": "code", "pattern": format!("{}%", self.rng.random_range(1..5))})
            }
            22..=23 => {
                let v = self.string_value(dim);
                json!({"type": "regex", "dimension": dim, "pattern": self.regex_pattern(&v)})
            }
            24 => {
                let list = self.interval_list();
                let texts: Vec<String> = list
                    .iter()
                    .map(|&(s, e)| self.interval_text(s, e))
                    .collect();
                json!({"type": "interval", "dimension": "__time", "intervals": texts})
            }
            25..=26 => {
                let col = *pick(
                    &mut self.rng,
                    &[
                        "region", "host", "tags", "code", "ratio", "sum_val", "sum_amt",
                    ],
                );
                json!({"type": "null", "column": col})
            }
            27 => json!({"type": if self.chance(0.5) { "true" } else { "false" }}),
            28 => {
                json!({"type": "selector", "dimension": "cnt", "value": self.rng.random_range(1..4).to_string()})
            }
            _ => json!({"type": "in", "dimension": dim, "values": [Value::Null]}),
        }
    }

    // ------------------------------------------------------------------------------------------
    // Aggregators
    // ------------------------------------------------------------------------------------------

    fn simple_agg(&mut self, name: &str) -> (Value, AggClass) {
        let plain = AggClass::Plain;
        match self.rng.random_range(0..22) {
            0..=2 => (json!({"type": "count", "name": name}), plain),
            3..=4 => {
                let f = *pick(&mut self.rng, &["cnt", "sum_val", "code"]);
                (
                    json!({"type": "longSum", "name": name, "fieldName": f}),
                    plain,
                )
            }
            5..=6 => {
                let f = *pick(&mut self.rng, &["sum_amt", "ratio", "sum_val", "max_amt"]);
                (
                    json!({"type": "doubleSum", "name": name, "fieldName": f}),
                    plain,
                )
            }
            7 => {
                let t = *pick(&mut self.rng, &["longMin", "longMax"]);
                let f = *pick(&mut self.rng, &["code", "sum_val"]);
                (json!({"type": t, "name": name, "fieldName": f}), plain)
            }
            8..=9 => {
                let t = *pick(&mut self.rng, &["doubleMin", "doubleMax"]);
                let f = *pick(
                    &mut self.rng,
                    &["min_amt", "max_amt", "ratio", "sum_amt", "code"],
                );
                (json!({"type": t, "name": name, "fieldName": f}), plain)
            }
            10..=11 => {
                let t = *pick(&mut self.rng, &["longFirst", "longLast"]);
                let f = *pick(&mut self.rng, &["first_val", "code", "sum_val"]);
                (
                    json!({"type": t, "name": name, "fieldName": f}),
                    AggClass::FirstLast,
                )
            }
            12..=13 => {
                let t = *pick(&mut self.rng, &["doubleFirst", "doubleLast"]);
                let f = *pick(&mut self.rng, &["last_amt", "ratio", "sum_amt"]);
                (
                    json!({"type": t, "name": name, "fieldName": f}),
                    AggClass::FirstLast,
                )
            }
            14..=15 => {
                let fields: Vec<&str> = match self.rng.random_range(0..6) {
                    0 => vec!["region"],
                    1 => vec!["host"],
                    2 => vec!["region", "host"],
                    3 => vec!["tags"],
                    4 => vec!["code"],
                    _ => vec!["host", "tags"],
                };
                let by_row = fields.len() > 1 && !fields.contains(&"tags") && self.chance(0.5);
                let round = self.chance(0.5);
                (
                    json!({"type": "cardinality", "name": name, "fields": fields, "byRow": by_row, "round": round}),
                    AggClass::Sketch(false),
                )
            }
            16..=17 => {
                let round = self.chance(0.3);
                (
                    json!({"type": "hyperUnique", "name": name, "fieldName": "users", "round": round}),
                    AggClass::Sketch(!round),
                )
            }
            18..=19 => {
                let round = self.chance(0.5);
                (
                    json!({"type": "HLLSketchMerge", "name": name, "fieldName": "users", "round": round}),
                    AggClass::Sketch(false),
                )
            }
            _ => {
                let f = *pick(&mut self.rng, &STRING_DIMS);
                let round = self.chance(0.5);
                (
                    json!({"type": "HLLSketchBuild", "name": name, "fieldName": f, "round": round}),
                    AggClass::Sketch(false),
                )
            }
        }
    }

    /// Between 1 and 5 aggregators named `a0`, `a1`, …
    fn aggs(&mut self, with_count: bool) -> Vec<NamedAgg> {
        let n = self.rng.random_range(1..=5);
        let mut out = Vec::new();
        if with_count {
            out.push((
                "a0".to_string(),
                json!({"type": "count", "name": "a0"}),
                AggClass::Plain,
            ));
        }
        while out.len() < n {
            let name = format!("a{}", out.len());
            let (agg, class) = self.simple_agg(&name);
            let agg = if self.chance(0.15) {
                json!({"type": "filtered", "name": name, "filter": self.filter(1), "aggregator": agg})
            } else {
                agg
            };
            out.push((name, agg, class));
        }
        out
    }

    fn post_aggs(&mut self, aggs: &[NamedAgg]) -> Vec<(String, Value)> {
        let plain: Vec<&String> = aggs
            .iter()
            .filter(|a| a.2 == AggClass::Plain)
            .map(|a| &a.0)
            .collect();
        let mut out = Vec::new();
        for i in 0..self.rng.random_range(0..=2) {
            let name = format!("p{i}");
            let p = match self.rng.random_range(0..5) {
                0 | 1 if !plain.is_empty() => {
                    let op = *pick(&mut self.rng, &["+", "-", "*", "/", "/", "quotient"]);
                    let a = pick(&mut self.rng, &plain).to_string();
                    let second = if op == "quotient" || self.chance(0.3) {
                        json!({"type": "constant", "name": "c", "value": *pick(&mut self.rng, &[2, 3, 10])})
                    } else {
                        json!({"type": "fieldAccess", "name": "f2", "fieldName": pick(&mut self.rng, &plain).as_str()})
                    };
                    json!({"type": "arithmetic", "name": name, "fn": op, "fields": [
                        {"type": "fieldAccess", "name": "f1", "fieldName": a}, second]})
                }
                2 if plain.len() >= 2 => {
                    let t = *pick(
                        &mut self.rng,
                        &["doubleGreatest", "doubleLeast", "longGreatest", "longLeast"],
                    );
                    json!({"type": t, "name": name, "fields": [
                        {"type": "fieldAccess", "fieldName": plain[0].as_str()},
                        {"type": "fieldAccess", "fieldName": plain[1].as_str()}]})
                }
                3 => {
                    let hu: Vec<&String> = aggs
                        .iter()
                        .filter(|a| a.2 == AggClass::Sketch(true))
                        .map(|a| &a.0)
                        .collect();
                    if let Some(h) = hu.first() {
                        json!({"type": "hyperUniqueCardinality", "name": name, "fieldName": h.as_str()})
                    } else {
                        let a = &pick(&mut self.rng, aggs).0;
                        json!({"type": "finalizingFieldAccess", "name": name, "fieldName": a})
                    }
                }
                _ => {
                    let a = &pick(&mut self.rng, aggs).0;
                    json!({"type": "finalizingFieldAccess", "name": name, "fieldName": a})
                }
            };
            out.push((name, p));
        }
        out
    }

    fn base(&mut self, query_type: &str) -> Value {
        let mut q = json!({"queryType": query_type, "dataSource": self.datasource(), "intervals": self.intervals()});
        if self.chance(0.6) {
            q["filter"] = self.filter(3);
        }
        if self.chance(0.1) {
            q["context"] = json!({"queryId": "differential", "timeout": 60000});
        }
        q
    }

    fn with_aggs(
        &mut self,
        q: &mut Value,
        with_count: bool,
    ) -> (Vec<NamedAgg>, Vec<(String, Value)>) {
        let aggs = self.aggs(with_count);
        let posts = self.post_aggs(&aggs);
        q["aggregations"] = json!(aggs.iter().map(|a| a.1.clone()).collect::<Vec<_>>());
        if !posts.is_empty() {
            q["postAggregations"] = json!(posts.iter().map(|p| p.1.clone()).collect::<Vec<_>>());
        }
        (aggs, posts)
    }

    /// A random query of a random type.
    pub fn query(&mut self) -> Value {
        match self.rng.random_range(0..100) {
            0..=24 => self.timeseries(),
            25..=44 => self.top_n(),
            45..=69 => self.group_by(),
            70..=81 => self.scan(),
            82..=88 => self.search(),
            89..=93 => self.time_boundary(),
            94..=97 => {
                let mut q = json!({"queryType": "segmentMetadata", "dataSource": self.datasource(), "intervals": self.intervals()});
                q["merge"] = json!(self.chance(0.5));
                q
            }
            _ => json!({"queryType": "dataSourceMetadata", "dataSource": self.datasource()}),
        }
    }

    /// A random timeseries query.
    pub fn timeseries(&mut self) -> Value {
        let mut q = self.base("timeseries");
        q["granularity"] = self.granularity(true);
        self.with_aggs(&mut q, false);
        if self.chance(0.2) {
            q["descending"] = json!(true);
        }
        if self.chance(0.3) {
            let ctx = q.get("context").cloned().unwrap_or(json!({}));
            let mut ctx = ctx;
            ctx["skipEmptyBuckets"] = json!(true);
            q["context"] = ctx;
        }
        q
    }

    fn dimension(&mut self) -> (String, Value) {
        let d = *pick(
            &mut self.rng,
            &["region", "host", "tags", "code", "region", "host"],
        );
        if self.chance(0.2) {
            let out = format!("{d}_out");
            (
                out.clone(),
                json!({"type": "default", "dimension": d, "outputName": out}),
            )
        } else {
            (d.to_string(), json!(d))
        }
    }

    /// A random topN query.
    pub fn top_n(&mut self) -> Value {
        let mut q = self.base("topN");
        q["granularity"] = self.granularity(false);
        let (_, dim) = self.dimension();
        q["dimension"] = dim;
        q["threshold"] = json!(self.rng.random_range(1..=15));
        let (aggs, posts) = self.with_aggs(&mut q, false);
        let mut metrics: Vec<String> = aggs
            .iter()
            .filter(|a| a.2 == AggClass::Plain)
            .map(|a| a.0.clone())
            .collect();
        metrics.extend(
            posts
                .iter()
                .filter(|p| p.1["type"] == "arithmetic")
                .map(|p| p.0.clone()),
        );
        let metric = if metrics.is_empty() || self.chance(0.15) {
            json!({"type": "dimension", "ordering": "lexicographic"})
        } else {
            let m = pick(&mut self.rng, &metrics).clone();
            if self.chance(0.3) {
                json!({"type": "numeric", "metric": m})
            } else {
                json!(m)
            }
        };
        q["metric"] = if self.chance(0.25) {
            json!({"type": "inverted", "metric": metric})
        } else {
            metric
        };
        q
    }

    /// A random groupBy query.
    pub fn group_by(&mut self) -> Value {
        let mut q = self.base("groupBy");
        q["granularity"] = self.granularity(false);
        let n = self.rng.random_range(1..=3);
        let mut dims: Vec<(String, Value)> = Vec::new();
        while dims.len() < n {
            let d = self.dimension();
            if !dims.iter().any(|x| x.0 == d.0 || x.1 == d.1) {
                dims.push(d);
            }
        }
        q["dimensions"] = json!(dims.iter().map(|d| d.1.clone()).collect::<Vec<_>>());
        let want_having = self.chance(0.25);
        let (aggs, posts) = self.with_aggs(&mut q, want_having);
        let extras = self.rng.random_range(0..10);
        if extras < 1 && dims.len() >= 2 {
            let subsets = json!([
                [dims[0].0.clone()],
                [],
                dims.iter().map(|d| d.0.clone()).collect::<Vec<_>>()
            ]);
            q["subtotalsSpec"] = subsets;
            return q;
        }
        if want_having {
            q["having"] = self.having(&dims, 1);
        }
        if extras >= 5 {
            let mut candidates: Vec<(String, bool)> =
                dims.iter().map(|d| (d.0.clone(), true)).collect();
            candidates.extend(
                aggs.iter()
                    .filter(|a| a.2 == AggClass::Plain)
                    .map(|a| (a.0.clone(), false)),
            );
            candidates.extend(
                posts
                    .iter()
                    .filter(|p| p.1["type"] == "arithmetic")
                    .map(|p| (p.0.clone(), false)),
            );
            let k = self.rng.random_range(1..=2);
            let mut cols = Vec::new();
            for _ in 0..k {
                let (c, is_dim) = pick(&mut self.rng, &candidates).clone();
                let mut spec = json!({"dimension": c, "direction": if self.chance(0.5) { "ascending" } else { "descending" }});
                if is_dim && c.starts_with("code") && self.chance(0.6) {
                    spec["dimensionOrder"] = json!("numeric");
                } else if self.chance(0.3) {
                    spec["dimensionOrder"] = json!("lexicographic");
                }
                cols.push(spec);
            }
            let mut ls =
                json!({"type": "default", "columns": cols, "limit": self.rng.random_range(1..60)});
            if self.chance(0.3) {
                ls["offset"] = json!(self.rng.random_range(0..20));
            }
            q["limitSpec"] = ls;
        }
        q
    }

    fn having(&mut self, dims: &[(String, Value)], depth: u32) -> Value {
        match self.rng.random_range(0..if depth > 0 { 7 } else { 4 }) {
            0 => {
                json!({"type": "greaterThan", "aggregation": "a0", "value": self.rng.random_range(0..40)})
            }
            1 => {
                json!({"type": "lessThan", "aggregation": "a0", "value": self.rng.random_range(1..40)})
            }
            2 => {
                json!({"type": "equalTo", "aggregation": "a0", "value": self.rng.random_range(1..4)})
            }
            3 => {
                let d = pick(&mut self.rng, dims).clone();
                let src = d.1.as_str().map_or_else(
                    || d.1["dimension"].as_str().unwrap().to_string(),
                    str::to_string,
                );
                let value = if src == "code" {
                    self.code().to_string()
                } else {
                    self.string_value(&src)
                };
                json!({"type": "filter", "filter": {"type": "selector", "dimension": d.0, "value": value}})
            }
            4 => {
                json!({"type": "and", "havingSpecs": [self.having(dims, depth - 1), self.having(dims, depth - 1)]})
            }
            5 => {
                json!({"type": "or", "havingSpecs": [self.having(dims, depth - 1), self.having(dims, depth - 1)]})
            }
            _ => json!({"type": "not", "havingSpec": self.having(dims, depth - 1)}),
        }
    }

    /// A random scan query.
    pub fn scan(&mut self) -> Value {
        let mut q = self.base("scan");
        let all = [
            "__time", "region", "host", "tags", "code", "ratio", "cnt", "sum_val", "sum_amt",
            "min_amt", "max_amt",
        ];
        if self.chance(0.6) {
            let mut cols: Vec<&str> = all
                .iter()
                .copied()
                .filter(|_| self.rng.random_bool(0.5))
                .collect();
            if cols.is_empty() {
                cols.push("host");
            }
            if self.chance(0.3) {
                cols.reverse();
            }
            q["columns"] = json!(cols);
        }
        let order = *pick(&mut self.rng, &["none", "none", "ascending", "descending"]);
        if order != "none"
            && let Some(cols) = q.get_mut("columns").and_then(Value::as_array_mut)
            && !cols.contains(&json!("__time"))
        {
            // The order is checked through `__time`.
            cols.push(json!("__time"));
        }
        if order != "none" || self.chance(0.3) {
            q["order"] = json!(order);
        }
        // Full scans of the big datasource are slow to compare; mostly use a limit.
        if self.chance(0.85) {
            q["limit"] = json!(self.rng.random_range(1..400));
        } else {
            // No limit: a few hours only, so results stay small.
            let start =
                T0 + self.rng.random_range(0..3) * DAY + self.rng.random_range(0..24) * HOUR;
            let hours = self.rng.random_range(1..4);
            q["intervals"] = json!([self.interval_text(start, start + hours * HOUR)]);
        }
        if self.chance(0.3) {
            q["offset"] = json!(self.rng.random_range(0..50));
        }
        if self.chance(0.4) {
            q["resultFormat"] = json!("compactedList");
        } else if self.chance(0.3) {
            q["resultFormat"] = json!("list");
        }
        if self.chance(0.3) {
            q["batchSize"] = json!(self.rng.random_range(1..200));
        }
        q
    }

    /// A random search query.
    pub fn search(&mut self) -> Value {
        let mut q = self.base("search");
        if self.chance(0.3) {
            q["granularity"] = json!("day");
        }
        let dims: Vec<&str> = STRING_DIMS
            .iter()
            .copied()
            .filter(|_| self.rng.random_bool(0.6))
            .collect();
        q["searchDimensions"] = json!(if dims.is_empty() { vec!["host"] } else { dims });
        let dim = *pick(&mut self.rng, &STRING_DIMS);
        let v = self.string_value(dim);
        let chars: Vec<char> = v.chars().collect();
        let s = self.rng.random_range(0..chars.len());
        let e = self.rng.random_range(s + 1..=chars.len().min(s + 4));
        let needle: String = chars[s..e].iter().collect();
        let needle = if self.chance(0.3) {
            needle.to_uppercase()
        } else {
            needle
        };
        q["query"] = match self.rng.random_range(0..3) {
            0 => json!({"type": "contains", "value": needle, "caseSensitive": self.chance(0.5)}),
            1 => json!({"type": "insensitive_contains", "value": needle}),
            _ => {
                json!({"type": "fragment", "values": [needle, chars[0].to_string()], "caseSensitive": self.chance(0.5)})
            }
        };
        if self.chance(0.3) {
            q["sort"] = json!({"type": if self.chance(0.5) { "strlen" } else { "lexicographic" }});
        }
        if self.chance(0.4) {
            q["limit"] = json!(self.rng.random_range(1..20));
        }
        q
    }

    /// A random timeBoundary query.
    pub fn time_boundary(&mut self) -> Value {
        let mut q = json!({"queryType": "timeBoundary", "dataSource": self.datasource()});
        if self.chance(0.6) {
            q["intervals"] = self.intervals();
        }
        if self.chance(0.4) {
            q["filter"] = self.filter(2);
        }
        match self.rng.random_range(0..4) {
            0 => q["bound"] = json!("minTime"),
            1 => q["bound"] = json!("maxTime"),
            _ => {}
        }
        q
    }
}
