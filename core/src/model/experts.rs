//! Residency of MoE expert weights in the mapped file: hit counters, `madvise` hints for the
//! experts a batch is about to read, reads of predicted experts ahead of their layer on a
//! background thread, and an optional budget of pinned (`mlock`ed) hot experts.
//!
//! Expert weights are never copied: they are read straight from the mapping, and the kernel
//! pages them in on first touch. This module only steers the page cache.

use std::collections::VecDeque;
use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;

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

/// MoE layers ahead whose experts are predicted and read in the background by default.
pub const DEFAULT_EXPERT_LOOKAHEAD: usize = 0;

/// How expert weights are kept in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpertResidencyOptions {
    /// Hint given for routed experts.
    pub advice: ExpertAdvice,
    /// Bytes of the most-used experts to pin in RAM (`mlock`); 0 = none, everything pages.
    pub cache_bytes: u64,
    /// At the start of each layer, the experts of the next MoE layers up to this many ahead
    /// (and of the current one) are predicted by applying their routers to the hidden state
    /// as it is now, and a background thread asks the OS to read them (`MADV_WILLNEED`), so
    /// that reading experts from storage overlaps the compute before them. 0 = off.
    pub lookahead: usize,
}

impl Default for ExpertResidencyOptions {
    fn default() -> Self {
        Self {
            advice: ExpertAdvice::default(),
            cache_bytes: 0,
            lookahead: DEFAULT_EXPERT_LOOKAHEAD,
        }
    }
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
    /// Experts (layer, expert) a batch used: each counted once per batch that routes to it.
    pub expert_uses: u64,
    /// Experts predicted ahead of their layer and handed to the background reader.
    pub prefetched: u64,
    /// Of [`expert_uses`](Self::expert_uses), those predicted ahead within the same batch.
    pub prefetch_hits: u64,
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

/// Spans of the mapping waiting for the background reader, as (address, length).
#[derive(Debug, Default)]
struct PrefetchQueue {
    spans: Mutex<(VecDeque<(usize, usize)>, bool)>,
    ready: Condvar,
}

/// A thread that asks the kernel to read queued spans of the mapping (`MADV_WILLNEED`), off
/// the compute threads (each call allocates and submits the span's pages, ~3 ms per 40 MB).
#[derive(Debug)]
struct Prefetcher {
    queue: Arc<PrefetchQueue>,
    thread: Option<JoinHandle<()>>,
}

impl Prefetcher {
    fn spawn() -> std::io::Result<Self> {
        let queue = Arc::new(PrefetchQueue::default());
        let worker = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name("fennec-prefetch".into())
            .spawn(move || read_ahead_loop(&worker))?;
        Ok(Self {
            queue,
            thread: Some(thread),
        })
    }

    /// Queues a span; when the reader has fallen this far behind, the oldest (stalest)
    /// prediction is dropped instead of growing the queue.
    fn push(&self, span: (usize, usize)) {
        const MAX_QUEUED: usize = 1024;
        let mut guard = self.queue.spans.lock().expect("prefetch queue");
        if guard.0.len() >= MAX_QUEUED {
            guard.0.pop_front();
        }
        guard.0.push_back(span);
        drop(guard);
        self.queue.ready.notify_one();
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.queue.spans.lock() {
            guard.1 = true;
        }
        self.queue.ready.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The prefetch thread: advises each queued span until the queue is closed.
fn read_ahead_loop(queue: &PrefetchQueue) {
    let mut guard = queue.spans.lock().expect("prefetch queue");
    loop {
        if let Some((addr, len)) = guard.0.pop_front() {
            drop(guard);
            // SAFETY: a hint on a span that lay within the read-only mapping when it was
            // queued; WILLNEED never changes contents, and on a span unmapped since (the
            // model dropped) the kernel only returns an error, which is ignored.
            unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_WILLNEED) };
            guard = queue.spans.lock().expect("prefetch queue");
        } else if guard.1 {
            return;
        } else {
            guard = queue.ready.wait(guard).expect("prefetch queue");
        }
    }
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
    /// The current lookahead in MoE layers (0 = no prediction).
    lookahead: AtomicUsize,
    /// `[layer][expert]`: 1 + the batch in which the expert was last handed to the reader.
    requested: Vec<Vec<AtomicU64>>,
    expert_uses: AtomicU64,
    prefetched: AtomicU64,
    prefetch_hits: AtomicU64,
    /// Started on the first prediction; `None` inside when the thread could not start.
    prefetcher: OnceLock<Option<Prefetcher>>,
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
        let requested = ranges
            .iter()
            .map(|l| l.iter().map(|_| AtomicU64::new(0)).collect())
            .collect();
        let pinned = ranges.iter().map(|l| vec![false; l.len()]).collect();
        let options = ExpertResidencyOptions::default();
        Self {
            layers,
            ranges,
            hits,
            batches: AtomicU64::new(0),
            advice: AtomicU8::new(options.advice.index()),
            lookahead: AtomicUsize::new(options.lookahead),
            requested,
            expert_uses: AtomicU64::new(0),
            prefetched: AtomicU64::new(0),
            prefetch_hits: AtomicU64::new(0),
            prefetcher: OnceLock::new(),
            pins: Mutex::new(Pins {
                options,
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
        self.lookahead.store(options.lookahead, Ordering::Relaxed);
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
        self.expert_uses.fetch_add(1, Ordering::Relaxed);
        if self.requested[moe_index][expert].load(Ordering::Relaxed) == self.batch_mark() {
            self.prefetch_hits.fetch_add(1, Ordering::Relaxed);
        }
        let advice = match ExpertAdvice::from_index(self.advice.load(Ordering::Relaxed)) {
            ExpertAdvice::WillNeed => libc::MADV_WILLNEED,
            ExpertAdvice::Sequential => libc::MADV_SEQUENTIAL,
            ExpertAdvice::None | ExpertAdvice::Random => return,
        };
        for r in &self.ranges[moe_index][expert] {
            advise(map, r.clone(), advice);
        }
    }

    /// MoE layers ahead whose experts the forward pass should predict (0 = none).
    pub(crate) fn lookahead(&self) -> usize {
        self.lookahead.load(Ordering::Relaxed)
    }

    /// Marks requests made in the current batch (never 0, the mark of "never requested").
    fn batch_mark(&self) -> u64 {
        self.batches.load(Ordering::Relaxed) + 1
    }

    /// Hands a predicted expert of MoE layer `moe_index` to the background reader, once per
    /// batch. Does nothing when the reader thread cannot run.
    pub(crate) fn prefetch(&self, map: &[u8], moe_index: usize, expert: usize) {
        let mark = self.batch_mark();
        if self.requested[moe_index][expert].swap(mark, Ordering::Relaxed) == mark {
            return;
        }
        let prefetcher = self.prefetcher.get_or_init(|| {
            Prefetcher::spawn()
                .map_err(|e| tracing::warn!("no expert read-ahead thread: {e}"))
                .ok()
        });
        let Some(prefetcher) = prefetcher else {
            return;
        };
        self.prefetched.fetch_add(1, Ordering::Relaxed);
        for r in &self.ranges[moe_index][expert] {
            if let Some((addr, len)) = page_span(map, r.clone()) {
                prefetcher.push((addr as usize, len));
            }
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
            expert_uses: self.expert_uses.load(Ordering::Relaxed),
            prefetched: self.prefetched.load(Ordering::Relaxed),
            prefetch_hits: self.prefetch_hits.load(Ordering::Relaxed),
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
