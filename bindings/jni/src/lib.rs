//! Placeholder: the JNI layer (issue 11).
