//! The GPU backend's error type.

use fennec_quant::GgmlType;

/// What can go wrong on the GPU path. Every variant names the problem; none is a panic.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No Vulkan or Metal adapter was found (no driver, or none that wgpu accepts).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused to open a device with the features and limits asked for.
    #[error("cannot open a device on {adapter}: {message}")]
    Device {
        /// The adapter's name.
        adapter: String,
        /// The driver's or wgpu's message.
        message: String,
    },
    /// A kernel did not build or did not pass validation on this driver.
    #[error("kernel {kernel} does not build on this device: {message}")]
    Pipeline {
        /// The kernel's name.
        kernel: String,
        /// The compiler's or validator's message.
        message: String,
    },
    /// A kernel built but computed wrong answers on this driver, so it is not used.
    #[error("kernel {kernel} failed its self-test on this device: {message}")]
    SelfTest {
        /// The kernel's name.
        kernel: String,
        /// What differed from the CPU.
        message: String,
    },
    /// No GPU kernel exists for this weight type.
    #[error("no GPU matrix-vector kernel for {0} weights")]
    Unsupported(GgmlType),
    /// A shape or a byte length does not fit the operation.
    #[error("bad shape: {0}")]
    Shape(String),
    /// One row is larger than the largest buffer binding the adapter allows.
    #[error("a row of {row_bytes} bytes exceeds the adapter's largest binding of {limit} bytes")]
    RowTooLarge {
        /// Bytes in one row.
        row_bytes: u64,
        /// The largest binding allowed.
        limit: u64,
    },
    /// The device failed while running or reading back (device lost, out of memory, map error).
    #[error("GPU execution failed: {0}")]
    Execution(String),
}
