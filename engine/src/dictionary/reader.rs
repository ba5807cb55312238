//! Zero-copy reading of a dictionary part.

use std::cmp::Ordering;
use std::path::Path;

use crate::error::{Error, Result};

/// A dictionary over the segment's mapped bytes.
#[derive(Debug, Clone, Copy)]
pub struct DictionaryReader<'a> {
    count: usize,
    offsets: &'a [u8],
    data: &'a [u8],
}

impl<'a> DictionaryReader<'a> {
    /// Open a dictionary part; checks its size against its entry count.
    pub fn open(bytes: &'a [u8], path: &Path, column: &str) -> Result<Self> {
        let check = |what: &str, expected: String, found: String| {
            Error::corruption(
                path,
                format!("column `{column}` dictionary {what}"),
                expected,
                found,
            )
        };
        if bytes.len() < 8 {
            return Err(check(
                "size",
                "at least 8 bytes".into(),
                bytes.len().to_string(),
            ));
        }
        let mut c = [0u8; 4];
        c.copy_from_slice(&bytes[..4]);
        let count = u32::from_le_bytes(c) as usize;
        let table = 4 * (count + 1);
        if bytes.len() - 4 < table {
            return Err(check(
                "offset table",
                format!("{table} bytes"),
                format!("{}", bytes.len() - 4),
            ));
        }
        let offsets = &bytes[4..4 + table];
        let data = &bytes[4 + table..];
        let d = DictionaryReader {
            count,
            offsets,
            data,
        };
        if d.offset(count) != data.len() {
            return Err(check(
                "data size",
                d.offset(count).to_string(),
                data.len().to_string(),
            ));
        }
        Ok(d)
    }

    fn offset(&self, i: usize) -> usize {
        let mut a = [0u8; 4];
        a.copy_from_slice(&self.offsets[4 * i..4 * i + 4]);
        u32::from_le_bytes(a) as usize
    }

    /// Number of entries (not counting null).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the dictionary has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Raw bytes of entry `index` (0-based), or `None` if out of range or damaged.
    pub fn get_bytes(&self, index: usize) -> Option<&'a [u8]> {
        if index >= self.count {
            return None;
        }
        let (a, b) = (self.offset(index), self.offset(index + 1));
        self.data.get(a..b)
    }

    /// Entry `index` as a string; `None` if out of range or not UTF-8.
    pub fn get(&self, index: usize) -> Option<&'a str> {
        std::str::from_utf8(self.get_bytes(index)?).ok()
    }

    /// Index of `value` by binary search (the dictionary is sorted).
    pub fn lookup(&self, value: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get_bytes(mid)?.cmp(value.as_bytes()) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Check every invariant: offsets in range and non-decreasing, UTF-8, strictly sorted.
    pub fn verify(&self, path: &Path, column: &str) -> Result<()> {
        let mut prev: Option<&[u8]> = None;
        for i in 0..self.count {
            let (a, b) = (self.offset(i), self.offset(i + 1));
            let bytes = self.data.get(a..b).ok_or_else(|| {
                Error::corruption(
                    path,
                    format!("column `{column}` dictionary entry {i} offsets"),
                    format!("a range within {} bytes", self.data.len()),
                    format!("{a}..{b}"),
                )
            })?;
            if std::str::from_utf8(bytes).is_err() {
                return Err(Error::corruption(
                    path,
                    format!("column `{column}` dictionary entry {i} UTF-8"),
                    "valid UTF-8",
                    format!("{bytes:?}"),
                ));
            }
            if let Some(p) = prev
                && p >= bytes
            {
                return Err(Error::corruption(
                    path,
                    format!("column `{column}` dictionary order at entry {i}"),
                    "strictly increasing entries",
                    format!(
                        "{:?} after {:?}",
                        String::from_utf8_lossy(bytes),
                        String::from_utf8_lossy(p)
                    ),
                ));
            }
            prev = Some(bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dictionary::encode_dictionary;

    #[test]
    fn round_trip_and_lookup() {
        let words = ["", "a", "b", "ba", "zz", "é"];
        let bytes = encode_dictionary(&words).unwrap();
        let p = Path::new("t");
        let d = DictionaryReader::open(&bytes, p, "c").unwrap();
        d.verify(p, "c").unwrap();
        assert_eq!(d.len(), words.len());
        for (i, w) in words.iter().enumerate() {
            assert_eq!(d.get(i), Some(*w));
            assert_eq!(d.lookup(w), Some(i));
        }
        assert_eq!(d.lookup("c"), None);
        assert_eq!(d.get(99), None);
        let unsorted = encode_dictionary(&["b", "a"]).unwrap();
        assert!(
            DictionaryReader::open(&unsorted, p, "c")
                .unwrap()
                .verify(p, "c")
                .is_err()
        );
        assert!(DictionaryReader::open(&bytes[..bytes.len() - 1], p, "c").is_err());
    }
}
