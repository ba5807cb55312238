//! The binary starts and lists its commands. (Also makes `cargo test --workspace` build the
//! `basalt` executable that the end-to-end tests in `tests/` run.)

#[test]
fn help_lists_the_commands() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("running basalt --help: {e}"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "segment", "load"] {
        assert!(text.contains(cmd), "`{cmd}` missing from:\n{text}");
    }
}

#[test]
fn unknown_command_fails_with_usage() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg("frobnicate")
        .output()
        .unwrap_or_else(|e| panic!("running basalt: {e}"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
