//! Declarations bindgen generated from `include/fennec.h`.
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code)]

// Link the library that defines the symbols.
use fennec as _;

include!(concat!(env!("OUT_DIR"), "/fennec_sys.rs"));
