//! Shared by the GPU tests: one device per test binary, and the rule for a missing adapter.

use std::sync::OnceLock;

use fennec_gpu::{Gpu, GpuOptions};

/// The device the tests share, or `None` (the test then passes as skipped) when there is no
/// adapter, unless `REQUIRE_GPU=1` (as CI sets with lavapipe installed): then it fails.
pub fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| open(&GpuOptions::default())).as_ref()
}

/// Opens a device with `options`, under the same rule as [`gpu`].
pub fn open(options: &GpuOptions) -> Option<Gpu> {
    match Gpu::new(options) {
        Ok(gpu) => Some(gpu),
        Err(e) if std::env::var("REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("REQUIRE_GPU=1 but no GPU: {e}")
        }
        Err(e) => {
            eprintln!("skipped, no GPU: {e}");
            None
        }
    }
}
