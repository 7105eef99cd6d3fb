//! `fennec-bindings`: the uniffi (Kotlin, Swift, Python), JNI and C ABI surfaces of Fennec.
//! Filled by later issues; it exists now so the dependency direction (bindings → core) is fixed.

pub use fennec_core as core;
