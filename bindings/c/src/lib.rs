//! Placeholder: the C ABI (issue 11).
