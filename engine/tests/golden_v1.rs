//! Format version 1 stays readable: the committed golden segment of version 1 (see
//! `golden/mod.rs`). Its files are never regenerated.

mod golden;

#[test]
fn golden_v1_segment_reads_back_expected_rows() {
    golden::segment_reads_back_expected_rows(1);
}

#[test]
fn golden_v1_header_and_footer() {
    golden::header_and_footer(1);
}

#[test]
fn current_writer_reproduces_golden_v1_rows() {
    golden::current_writer_reproduces_golden_rows(1);
}
