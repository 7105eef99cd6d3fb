//! Fennec for Kotlin, Swift and Python (uniffi).
