//! Placeholder: the JNI layer (issue 11).

pub use fennec_ffi;
