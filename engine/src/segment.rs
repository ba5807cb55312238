//! Immutable segments: identity, byte format, writer, reader and verification.

pub mod format;
pub mod id;
pub mod reader;
pub mod verify;
pub mod writer;

pub use id::{SegmentId, Version};
pub use reader::{Segment, SegmentRef};
pub use verify::{VerifyReport, verify_file, verify_segment};
pub use writer::{BatchReport, FinishOptions, SegmentStats, SegmentWriter};
