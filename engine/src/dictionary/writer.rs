//! Building the dictionary part.

use crate::error::{Error, Result};

/// Encode sorted, distinct strings as a dictionary part.
pub fn encode_dictionary<S: AsRef<str>>(sorted: &[S]) -> Result<Vec<u8>> {
    let total: usize = sorted.iter().map(|s| s.as_ref().len()).sum();
    if u32::try_from(total).is_err() || u32::try_from(sorted.len() + 1).is_err() {
        return Err(Error::ResourcesExhausted(format!(
            "dictionary of {} values and {total} bytes exceeds the 4 GiB limit of one segment column",
            sorted.len()
        )));
    }
    let mut out = Vec::with_capacity(4 + 4 * (sorted.len() + 1) + total);
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    let mut off = 0u32;
    out.extend_from_slice(&off.to_le_bytes());
    for s in sorted {
        off += s.as_ref().len() as u32;
        out.extend_from_slice(&off.to_le_bytes());
    }
    for s in sorted {
        out.extend_from_slice(s.as_ref().as_bytes());
    }
    Ok(out)
}
