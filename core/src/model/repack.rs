//! Repacking at load: the dense matrices the forward pass multiplies by are rewritten, in
//! memory, into the row-lane panels this CPU's kernels read directly
//! ([`fennec_quant::matmul::WeightLayout::Panels`]).
//!
//! Panels take exactly the bytes of the rows they replace, so each matrix is rewritten in
//! place in the file's private mapping: its pages become the process's own memory instead
//! of page-cache pages, and resident memory stays the file's size (llama.cpp's repack
//! copies into a second buffer). Routed experts keep streaming from the mapping as they
//! are; an untied token embedding, read a few rows at a time, is left alone.

use std::collections::HashSet;

use fennec_quant::matmul::{repack, repack_pays_off, WeightLayout};
use fennec_quant::GgmlType;

use super::weights::TensorRef;
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
