//! Shared helpers for Fennec integration tests.
