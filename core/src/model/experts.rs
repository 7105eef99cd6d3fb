//! Residency of MoE expert weights in the mapped file: hit counters, `madvise` hints for the
//! experts a batch is about to read, and an optional budget of pinned (`mlock`ed) hot experts.
//!
//! Expert weights are never copied: they are read straight from the mapping, and the kernel
//! pages them in on first touch. This module only steers the page cache.

use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::gguf::page_span;

/// Which `madvise` hint Fennec gives for the experts a batch routes to, just before reading them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpertAdvice {
    /// No hints: the kernel's default readahead.
    None,
    /// `MADV_WILLNEED`: start reading the chosen experts' pages in the background.
    #[default]
    WillNeed,
    /// `MADV_SEQUENTIAL` on the chosen experts (aggressive readahead, early reclaim).
    Sequential,
    /// `MADV_RANDOM` on all expert weights at load: no readahead pulls in unchosen experts.
    Random,
}

impl ExpertAdvice {
    const ALL: [Self; 4] = [Self::None, Self::WillNeed, Self::Sequential, Self::Random];

    fn from_index(i: u8) -> Self {
        Self::ALL[usize::from(i) % Self::ALL.len()]
    }

    fn index(self) -> u8 {
        Self::ALL.iter().position(|&a| a == self).unwrap_or(0) as u8
    }
}

impl FromStr for ExpertAdvice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "willneed" => Ok(Self::WillNeed),
            "sequential" => Ok(Self::Sequential),
            "random" => Ok(Self::Random),
            other => Err(Error::InvalidArgument(format!(
                "expert advice {other:?}: expected none, willneed, sequential or random"
            ))),
        }
    }
}

/// How expert weights are kept in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpertResidencyOptions {
    /// Hint given for routed experts.
    pub advice: ExpertAdvice,
    /// Bytes of the most-used experts to pin in RAM (`mlock`); 0 = none, everything pages.
    pub cache_bytes: u64,
}

/// Expert usage and residency of one MoE layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpertLayerStats {
    /// The layer's index in the model.
    pub layer: usize,
    /// Tokens routed to each expert since load.
    pub hits: Vec<u64>,
    /// Whether each expert is pinned in RAM now.
    pub pinned: Vec<bool>,
}

/// Expert usage and residency of a whole model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpertStats {
    /// One entry per MoE layer.
    pub layers: Vec<ExpertLayerStats>,
    /// Bytes of one expert's gate, up and down matrices together.
    pub expert_bytes: u64,
    /// Bytes pinned now.
    pub pinned_bytes: u64,
    /// The pinning budget.
    pub budget_bytes: u64,
    /// Why pinning stopped, if the OS refused it.
    pub pin_error: Option<String>,
}

impl ExpertStats {
    /// Tokens routed to any expert, summed over layers.
    pub fn total_hits(&self) -> u64 {
        self.layers.iter().flat_map(|l| &l.hits).sum()
    }

    /// Experts (layer, expert) that received at least one token.
    pub fn experts_used(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| &l.hits)
            .filter(|&&h| h > 0)
            .count()
    }
}

/// Pinning state, changed under a lock.
#[derive(Debug)]
struct Pins {
    options: ExpertResidencyOptions,
    pinned: Vec<Vec<bool>>,
    pinned_bytes: u64,
    error: Option<String>,
    /// Experts by hits, reused by every rebalance (no allocation once grown).
    ranked: Vec<(u64, usize, usize)>,
}

/// Counters and residency control of a model's experts.
#[derive(Debug)]
pub(crate) struct ExpertResidency {
    /// Model layer index of each MoE layer.
    layers: Vec<usize>,
    /// Byte ranges in the file of each MoE layer's experts: `[layer][expert]` → gate, up, down.
    ranges: Vec<Vec<[Range<usize>; 3]>>,
    hits: Vec<Vec<AtomicU64>>,
    batches: AtomicU64,
    /// The current [`ExpertAdvice`] (its index), read on every routed expert without a lock.
    advice: AtomicU8,
    pins: Mutex<Pins>,
}

/// Pinning is rebalanced every this many batches (and on the first).
const REBALANCE_EVERY: u64 = 16;

impl ExpertResidency {
    /// Residency for MoE layers `layers`, whose experts occupy `ranges`.
    pub(crate) fn new(layers: Vec<usize>, ranges: Vec<Vec<[Range<usize>; 3]>>) -> Self {
        let hits = ranges
            .iter()
            .map(|l| l.iter().map(|_| AtomicU64::new(0)).collect())
            .collect();
        let pinned = ranges.iter().map(|l| vec![false; l.len()]).collect();
        Self {
            layers,
            ranges,
            hits,
            batches: AtomicU64::new(0),
            advice: AtomicU8::new(ExpertAdvice::default().index()),
            pins: Mutex::new(Pins {
                options: ExpertResidencyOptions::default(),
                pinned,
                pinned_bytes: 0,
                error: None,
                ranked: Vec::new(),
            }),
        }
    }

    fn expert_bytes(&self) -> u64 {
        self.ranges
            .first()
            .and_then(|l| l.first())
            .map_or(0, |r| r.iter().map(|r| r.len() as u64).sum())
    }

    /// Applies new options: the whole-range advice now (only when switching to or from
    /// `Random`), pins at once.
    pub(crate) fn configure(&self, map: &[u8], options: ExpertResidencyOptions) {
        let mut pins = self.pins.lock().expect("expert pins");
        let was_random = pins.options.advice == ExpertAdvice::Random;
        let is_random = options.advice == ExpertAdvice::Random;
        pins.options = options;
        pins.error = None;
        self.advice.store(options.advice.index(), Ordering::Relaxed);
        if was_random != is_random {
            let advice = if is_random {
                libc::MADV_RANDOM
            } else {
                libc::MADV_NORMAL
            };
            for r in self.ranges.iter().flatten().flatten() {
                advise(map, r.clone(), advice);
            }
        }
        drop(pins);
        self.rebalance(map);
    }

    /// Records that `n_tokens` tokens of MoE layer `moe_index` go to `expert`, and hints the
    /// kernel to page the expert in.
    pub(crate) fn before_use(&self, map: &[u8], moe_index: usize, expert: usize, n_tokens: usize) {
        self.hits[moe_index][expert].fetch_add(n_tokens as u64, Ordering::Relaxed);
        let advice = match ExpertAdvice::from_index(self.advice.load(Ordering::Relaxed)) {
            ExpertAdvice::WillNeed => libc::MADV_WILLNEED,
            ExpertAdvice::Sequential => libc::MADV_SEQUENTIAL,
            ExpertAdvice::None | ExpertAdvice::Random => return,
        };
        for r in &self.ranges[moe_index][expert] {
            advise(map, r.clone(), advice);
        }
    }

    /// Called after each forward pass: now and then re-pins the hottest experts.
    pub(crate) fn after_batch(&self, map: &[u8]) {
        let n = self.batches.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(REBALANCE_EVERY) {
            self.rebalance(map);
        }
    }

    /// Pins the most-hit experts that fit the budget and unpins the rest.
    fn rebalance(&self, map: &[u8]) {
        let Ok(mut pins) = self.pins.try_lock() else {
            return; // Another session is rebalancing.
        };
        let budget = pins.options.cache_bytes;
        let expert_bytes = self.expert_bytes().max(1);
        if budget < expert_bytes && pins.pinned_bytes == 0 {
            return; // Nothing pinned and nothing to pin: the usual case, and free.
        }
        let mut want: Vec<Vec<bool>> = self.ranges.iter().map(|l| vec![false; l.len()]).collect();
        if budget >= expert_bytes && pins.error.is_none() {
            let mut ranked = std::mem::take(&mut pins.ranked);
            ranked.clear();
            ranked.extend(self.hits.iter().enumerate().flat_map(|(l, hs)| {
                hs.iter()
                    .enumerate()
                    .map(move |(e, h)| (h.load(Ordering::Relaxed), l, e))
            }));
            ranked.retain(|&(h, _, _)| h > 0);
            ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let n_fit = (budget / expert_bytes) as usize;
            for &(_, l, e) in ranked.iter().take(n_fit) {
                want[l][e] = true;
            }
            pins.ranked = ranked;
        }
        for (l, layer) in want.iter().enumerate() {
            for (e, &w) in layer.iter().enumerate() {
                if w == pins.pinned[l][e] {
                    continue;
                }
                let result = self.ranges[l][e]
                    .iter()
                    .try_for_each(|r| lock(map, r.clone(), w));
                match result {
                    Ok(()) => {
                        pins.pinned[l][e] = w;
                        if w {
                            pins.pinned_bytes += expert_bytes;
                        } else {
                            pins.pinned_bytes -= expert_bytes;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("cannot pin experts in RAM, they will page: {e}");
                        pins.error = Some(e);
                        return;
                    }
                }
            }
        }
    }

    /// Counters and residency now.
    pub(crate) fn stats(&self) -> ExpertStats {
        let pins = self.pins.lock().expect("expert pins");
        ExpertStats {
            layers: self
                .layers
                .iter()
                .zip(&self.hits)
                .zip(&pins.pinned)
                .map(|((&layer, hits), pinned)| ExpertLayerStats {
                    layer,
                    hits: hits.iter().map(|h| h.load(Ordering::Relaxed)).collect(),
                    pinned: pinned.clone(),
                })
                .collect(),
            expert_bytes: self.expert_bytes(),
            pinned_bytes: pins.pinned_bytes,
            budget_bytes: pins.options.cache_bytes,
            pin_error: pins.error.clone(),
        }
    }
}

/// A best-effort `madvise` on part of the mapping (a hint: failure changes nothing).
fn advise(map: &[u8], range: Range<usize>, advice: libc::c_int) {
    if let Some((addr, len)) = page_span(map, range) {
        // SAFETY: the span lies within (page-rounded down to the start of) the read-only
        // mapping `map`, which outlives the call; these advice values never change contents.
        unsafe { libc::madvise(addr, len, advice) };
    }
}

/// `mlock`s (or `munlock`s) part of the mapping. Locks do not nest: unpinning an expert also
/// unlocks the (at most two) pages it shares with its neighbours.
fn lock(map: &[u8], range: Range<usize>, pin: bool) -> std::result::Result<(), String> {
    let Some((addr, len)) = page_span(map, range) else {
        return Ok(());
    };
    // SAFETY: the span lies within the live mapping `map`; (un)locking does not change
    // its contents or validity.
    let rc = unsafe {
        if pin {
            libc::mlock(addr, len)
        } else {
            libc::munlock(addr, len)
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}
