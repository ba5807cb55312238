//! Format version 2 (the frames codec) stays readable: the committed golden segment of version 2
//! (see `golden/mod.rs`).

#![allow(clippy::unwrap_used)]

use basalt_engine::segment::Segment;
use basalt_engine::segment::format::Codec;

mod golden;

#[test]
fn golden_v2_segment_reads_back_expected_rows() {
    golden::segment_reads_back_expected_rows(2);
}

#[test]
fn golden_v2_header_and_footer() {
    golden::header_and_footer(2);
}

#[test]
fn current_writer_reproduces_golden_v2_rows() {
    golden::current_writer_reproduces_golden_rows(2);
}

/// The file holds what version 2 added: frames blocks, in long, id and pair-time streams.
#[test]
fn golden_v2_holds_frames_blocks() {
    let seg = Segment::open(&golden::segment_path(2)).unwrap();
    let mut frames = 0;
    for c in seg.columns() {
        for s in &c.streams {
            frames += s.blocks.iter().filter(|b| b.codec == Codec::Frames).count();
        }
    }
    assert!(frames >= 3, "{frames} frames blocks");
}

/// Writes `testdata/golden_v2/`: only while version 2 is unreleased (see `golden/mod.rs`).
#[test]
#[ignore = "writes the committed golden files; run explicitly, never for a released version"]
fn regenerate() {
    golden::regenerate(2);
}
