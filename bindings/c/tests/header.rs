//! The committed `include/fennec.h` is what cbindgen generates from the sources now.
//! Regenerate it with `FENNEC_BLESS=1 cargo test -p fennec-c --test header`.

use std::path::Path;

#[test]
fn committed_header_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen failed");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let fresh = String::from_utf8(fresh).expect("header is UTF-8");
    let committed_path = dir.join("include/fennec.h");
    if std::env::var_os("FENNEC_BLESS").is_some() {
        std::fs::write(&committed_path, &fresh).expect("write include/fennec.h");
        return;
    }
    let tmp = std::env::temp_dir().join(format!("fennec-{}.h", std::process::id()));
    std::fs::write(&tmp, &fresh).expect("write temp header");
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if committed != fresh {
        let first = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(fresh.lines().count()));
        panic!(
            "bindings/c/include/fennec.h is out of date (first difference at line {}; fresh \
             header in {}).\nRegenerate it: FENNEC_BLESS=1 cargo test -p fennec-c --test header",
            first + 1,
            tmp.display()
        );
    }
    let _ = std::fs::remove_file(tmp);
    // Every exported function appears in the header.
    for f in [
        "fennec_model_load",
        "fennec_session_chat",
        "fennec_set_log_callback",
        "fennec_whisper_load",
        "fennec_transcribe",
        "fennec_stt_push_i16",
    ] {
        assert!(fresh.contains(f), "{f} missing from the header");
    }
}
