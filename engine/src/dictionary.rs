//! Sorted string dictionaries of string dimensions.
//!
//! ```text
//! DICTIONARY := count:u32 offsets:u32[count + 1] utf8_bytes
//! ```
//! Entry `i` is `utf8_bytes[offsets[i]..offsets[i + 1]]`. Entries are strictly increasing in byte
//! order. Row value ids are `entry index + 1`; id 0 stands for null.

pub mod reader;
pub mod writer;

pub use reader::DictionaryReader;
pub use writer::encode_dictionary;
