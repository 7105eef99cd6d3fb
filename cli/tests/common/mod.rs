//! Helpers shared by the CLI tests: running the `fennec` binary and finding the test model.
#![allow(dead_code)] // each test file uses its own subset

use std::io::Write;
use std::process::{Command, Stdio};

/// The SmolLM2 test model's path (fetched by scripts/fetch-models.sh).
pub fn smollm2() -> String {
    fennec_tests::smollm2_path().to_string_lossy().into_owned()
}

/// Runs `fennec` with `args`: (exit success, stdout, stderr).
pub fn fennec(args: &[&str]) -> (bool, String, String) {
    fennec_with_stdin(args, "")
}

/// Runs `fennec` with `args`, writing `stdin` to its standard input.
pub fn fennec_with_stdin(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fennec"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
