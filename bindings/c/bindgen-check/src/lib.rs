//! Declarations bindgen generated from `include/fennec.h`, linked against the built
//! `libfennec.so` (see `build.rs`) exactly as a firmware project mixing C and Rust would:
//! through the C library, not through the `fennec-c` crate.
#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code
)]

include!(concat!(env!("OUT_DIR"), "/fennec_sys.rs"));
