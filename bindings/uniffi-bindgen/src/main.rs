//! `uniffi-bindgen generate --library <libfennec_ffi> -l kotlin|swift|python`: the generator
//! of the same uniffi version fennec-ffi is built with (a different version would generate
//! bindings whose checksums the library rejects).

fn main() {
    uniffi::uniffi_bindgen_main()
}
