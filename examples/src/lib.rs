//! Runnable examples of the Fennec library; see `examples/` (`cargo run -p fennec-examples --example chat -- MODEL.gguf`).
