//! How much memory the machine can still give: the KV cache of a session is checked against
//! it before it is allocated, because with overcommit a too-large allocation "succeeds" and
//! the process is killed later when the pages are touched.

/// Free RAM plus free swap plus reclaimable page cache, in bytes; `None` where unknown.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn available_bytes() -> Option<u64> {
    // MemAvailable counts the page cache the kernel can drop (mapped model weights
    // included), which sysinfo's freeram does not.
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    };
    let available = field("MemAvailable:")?;
    Some(available.saturating_add(field("SwapFree:").unwrap_or(0)))
}

/// Free RAM plus free swap plus reclaimable page cache, in bytes; `None` where unknown.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn available_bytes() -> Option<u64> {
    None
}
