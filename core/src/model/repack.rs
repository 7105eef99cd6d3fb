//! Repacking at load: the dense matrices the forward pass multiplies by are rewritten, in
//! memory, into the row-lane panels this CPU's kernels read directly
//! ([`fennec_quant::matmul::WeightLayout::Panels`]).
//!
//! Panels take exactly the bytes of the rows they replace, so each matrix is rewritten in
//! place in the file's private mapping: its pages become the process's own memory instead
//! of page-cache pages, and resident memory stays the file's size (llama.cpp's repack
//! copies into a second buffer). Routed experts are repacked the same way, each expert as
//! its own matrix, when the whole model fits in memory with room to spare; otherwise they
//! keep streaming from the mapping as they are (a private copy could not be paged out).
//! An untied token embedding, read a few rows at a time, is left alone.

use std::collections::HashSet;

use fennec_quant::matmul::{repack, repack_pays_off, WeightLayout};
use fennec_quant::GgmlType;

use super::weights::{ExpertTensor, TensorRef};
use crate::error::Error;
use crate::gguf::GgufFile;

/// Rewrites each of `matrices` whose type this CPU's kernels read faster as panels, and
/// marks it (and `lookup` tensors that share its bytes, such as a tied token embedding)
/// [`WeightLayout::Panels`]. Returns the bytes rewritten and the types they hold. Nothing is repacked when the
/// matrices would take more than half of physical memory: a model larger than memory pages
/// from its file, which private copies cannot. A matrix that cannot be rewritten (its
/// pages cannot be made writable) stays as rows, with a warning: the model still runs.
pub(crate) fn repack_matrices(
    file: &mut GgufFile,
    matrices: Vec<&mut TensorRef>,
    lookup: Vec<&mut TensorRef>,
) -> (u64, Vec<GgmlType>) {
    let mut marked = matrices;
    marked.retain(|t| repack_pays_off(t.ty) && t.layout == WeightLayout::Rows);
    let mut todo: Vec<TensorRef> = Vec::new();
    let mut seen = HashSet::new();
    for t in &marked {
        if seen.insert(t.start) {
            todo.push(**t);
        }
    }
    let total: u64 = todo.iter().map(|t| t.len as u64).sum();
    if let Some(memory) = physical_memory().filter(|&m| total > m / 2) {
        tracing::info!(
            total,
            memory,
            "not repacking: the matrices exceed half of memory"
        );
        return (0, Vec::new());
    }
    let (mut done, mut bytes, mut types) = (HashSet::new(), 0, Vec::new());
    for t in &todo {
        let rewritten = file
            .edit_in_memory(t.start..t.start + t.len, |b| repack(t.ty, t.n_in, b))
            .map_err(Error::from)
            .and_then(|r| r.map_err(Error::from));
        match rewritten {
            Ok(()) => {
                done.insert(t.start);
                bytes += t.len as u64;
                if !types.contains(&t.ty) {
                    types.push(t.ty);
                }
            }
            Err(e) => tracing::warn!("matrix at byte {} stays as rows: {e}", t.start),
        }
    }
    for t in marked.into_iter().chain(lookup) {
        if done.contains(&t.start) {
            t.layout = WeightLayout::Panels;
        }
    }
    tracing::debug!(
        tensors = done.len(),
        bytes,
        "repacked matrices into row-lane panels"
    );
    (bytes, types)
}

/// Rewrites every expert of `experts` into panels, when the types pay off and the dense
/// matrices already rewritten (`dense_bytes`) plus the experts take at most half
/// of the memory available now ([`available_memory`]); marks each tensor done
/// [`WeightLayout::Panels`]. Returns the bytes rewritten and the types they hold. A tensor
/// that cannot be rewritten stays as rows, with a warning.
pub(crate) fn repack_experts(
    file: &mut GgufFile,
    experts: Vec<&mut ExpertTensor>,
    dense_bytes: u64,
) -> (u64, Vec<GgmlType>) {
    let mut todo = experts;
    todo.retain(|t| repack_pays_off(t.ty) && t.layout == WeightLayout::Rows);
    let total: u64 = todo
        .iter()
        .map(|t| (t.expert_bytes * t.n_expert()) as u64)
        .sum();
    if total == 0 {
        return (0, Vec::new());
    }
    match available_memory() {
        Some(memory) if (dense_bytes + total) <= memory / 2 => {}
        memory => {
            tracing::info!(
                total,
                ?memory,
                "routed experts stay as stored: the model would take more than half of \
                 the memory available"
            );
            return (0, Vec::new());
        }
    }
    let (mut bytes, mut types) = (0, Vec::new());
    for t in todo {
        // One edit for the whole tensor: its experts become panels together or not at all
        // (every expert has the same shape, so `repack` accepts all or none).
        let whole = t.start..t.start + t.expert_bytes * t.n_expert();
        let rewritten = file
            .edit_in_memory(whole, |b| {
                b.chunks_exact_mut(t.expert_bytes)
                    .try_for_each(|expert| repack(t.ty, t.n_in, expert))
            })
            .map_err(Error::from)
            .and_then(|r| r.map_err(Error::from));
        match rewritten {
            Ok(()) => {
                t.layout = WeightLayout::Panels;
                bytes += (t.expert_bytes * t.n_expert()) as u64;
                if !types.contains(&t.ty) {
                    types.push(t.ty);
                }
            }
            Err(e) => tracing::warn!("experts at byte {} stay as rows: {e}", t.start),
        }
    }
    tracing::debug!(bytes, "repacked routed experts into row-lane panels");
    (bytes, types)
}

/// Bytes of memory available to this process now: Linux's `MemAvailable` (free memory
/// plus what the kernel can reclaim, such as clean page cache), else physical memory.
fn available_memory() -> Option<u64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
        let kib = meminfo.as_deref().and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        if let Some(kib) = kib {
            return Some(kib * 1024);
        }
    }
    physical_memory()
}

/// Bytes of physical memory, where the system says.
fn physical_memory() -> Option<u64> {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let (pages, page) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        (pages > 0 && page > 0).then(|| pages as u64 * page as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}
