//! Runs bindgen on the committed header.

use std::path::PathBuf;

fn main() {
    let header = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../include/fennec.h");
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
}
