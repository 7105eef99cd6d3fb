//! Runs bindgen on the committed header and links the C library built by the main workspace
//! (`cargo build --workspace --all-targets` writes it to `target/debug/libfennec.so`).
//!
//! `FENNEC_C_LIB_DIR` names the directory holding `libfennec.so`; by default the main
//! workspace's `$CARGO_TARGET_DIR/debug`, else `target/debug` at the repository root.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let header = manifest.join("../include/fennec.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let bindings = bindgen::Builder::default()
        .header(header.to_str().unwrap())
        .clang_args(["-std=c99", "-x", "c"])
        .prepend_enum_name(false)
        .allowlist_function("fennec_.*")
        .allowlist_type("fennec_.*")
        .allowlist_var("FENNEC_.*")
        .generate()
        .expect("bindgen failed on include/fennec.h");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("fennec_sys.rs");
    bindings.write_to_file(out).expect("write bindings");

    println!("cargo:rerun-if-env-changed=FENNEC_C_LIB_DIR");
    let lib_dir = match std::env::var_os("FENNEC_C_LIB_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest.join("../../../target"))
            .join("debug"),
    };
    let lib = lib_dir.join("libfennec.so");
    assert!(
        lib.is_file(),
        "{} is missing: build the C library first (cargo build --workspace --all-targets)",
        lib.display()
    );
    println!("cargo:rerun-if-changed={}", lib.display());
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-lib=dylib=fennec");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
}
