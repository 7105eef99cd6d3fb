//! Compiles `examples/generate.c` with `gcc -std=c99 -Wall -Wextra -Werror` against the
//! staticlib cargo built beside this test, runs it on SmolLM2, and checks that its greedy
//! reply equals `Session::chat` run from Rust, token for token.

use std::path::{Path, PathBuf};
use std::process::Command;

use fennec_core::chat::ChatMessage;
use fennec_core::{CancelHandle, GenerateOptions, LoadOptions, Model, SamplerOptions, Session};

const N_TOKENS: usize = 12;

/// The directory holding libfennec.a: the profile directory above `deps/`.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Builds the staticlib: `cargo test` compiles this crate only as an rlib, so libfennec.a is
/// either absent or left from an earlier `cargo build`, possibly of older sources. Cargo
/// holds no lock while tests run; when the library is fresh this is a no-op. The selection
/// is the whole workspace's, as `cargo test --workspace` and scripts/test.sh build it: with
/// `-p fennec-c` alone cargo would resolve shared dependencies with other features and
/// compile ~40 crates a second time.
fn build_staticlib() -> PathBuf {
    let dir = lib_dir();
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(name) => name,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--workspace",
            "--all-targets",
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(dir.parent().unwrap())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p fennec-c failed");
    let lib = dir.join("libfennec.a");
    assert!(lib.is_file(), "{} missing after cargo build", lib.display());
    lib
}

fn rust_reply() -> Vec<u32> {
    let model = Model::load(fennec_tests::smollm2_path(), &LoadOptions::with_threads(2)).unwrap();
    let mut session = Session::new(model, fennec_core::SessionOptions::with_ctx(256)).unwrap();
    session
        .chat(
            &[ChatMessage::new("user", "What is the capital of France?")],
            &GenerateOptions::new(N_TOKENS, SamplerOptions::greedy()),
            &CancelHandle::new(),
            &mut |_| true,
        )
        .unwrap()
        .tokens
}

#[test]
fn c_example_matches_rust() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = build_staticlib();
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fennec-generate-c");
    let status = Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-I"])
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("examples/generate.c"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .status()
        .expect("gcc runs");
    assert!(status.success(), "gcc failed");
    let out = Command::new(&exe)
        .arg(fennec_tests::smollm2_path())
        .arg(N_TOKENS.to_string())
        .arg("2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "C program failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("FENNEC_OK_ALL"), "{stdout}");
    let ids: Vec<u32> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FENNEC_TOKENS"))
        .expect("FENNEC_TOKENS line")
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(
        ids,
        rust_reply(),
        "the C program's greedy reply differs from Session::chat"
    );
}
