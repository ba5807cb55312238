//! Rejected rows: counted by reason, with the first few examples (file, line and message).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Examples kept per reason.
pub const EXAMPLES_PER_REASON: usize = 3;

/// Rejected rows by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectStats {
    /// Reason category (e.g. ``field `usage`: not a double``) → rows.
    pub by_reason: BTreeMap<String, u64>,
    /// Reason category → first examples, each `file:line: message`.
    pub examples: BTreeMap<String, Vec<String>>,
}

impl RejectStats {
    /// Total rejected rows.
    pub fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }

    /// Count one rejected row.
    pub fn add(&mut self, reason: &str, example: impl FnOnce() -> String) {
        *self.by_reason.entry(reason.to_string()).or_default() += 1;
        let ex = self.examples.entry(reason.to_string()).or_default();
        if ex.len() < EXAMPLES_PER_REASON {
            ex.push(example());
        }
    }

    /// Add everything from `other`.
    pub fn merge(&mut self, other: &RejectStats) {
        for (r, n) in &other.by_reason {
            *self.by_reason.entry(r.clone()).or_default() += n;
        }
        for (r, ex) in &other.examples {
            let mine = self.examples.entry(r.clone()).or_default();
            for e in ex {
                if mine.len() < EXAMPLES_PER_REASON {
                    mine.push(e.clone());
                }
            }
        }
    }

    /// Human-readable lines: one per reason with its count, then its examples indented.
    pub fn describe(&self, max_reasons: usize) -> Vec<String> {
        let mut reasons: Vec<(&String, &u64)> = self.by_reason.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut out = Vec::new();
        for (reason, n) in reasons.iter().take(max_reasons) {
            out.push(format!("{n} × {reason}"));
            for ex in self.examples.get(*reason).into_iter().flatten() {
                out.push(format!("    e.g. {ex}"));
            }
        }
        if reasons.len() > max_reasons {
            out.push(format!(
                "… and {} more reasons",
                reasons.len() - max_reasons
            ));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_keeps_first_examples() {
        let mut a = RejectStats::default();
        for i in 0..5 {
            a.add("bad long", || format!("f.csv:{i}: x"));
        }
        a.add("bad time", || "f.csv:9: t".into());
        let mut b = RejectStats::default();
        b.merge(&a);
        b.merge(&a);
        assert_eq!(b.total(), 12);
        assert_eq!(b.examples["bad long"].len(), EXAMPLES_PER_REASON);
        let lines = b.describe(10);
        assert_eq!(lines[0], "10 × bad long");
        assert!(lines[1].contains("f.csv:0"));
    }
}
