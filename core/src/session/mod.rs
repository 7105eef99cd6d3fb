//! A session: one conversation's KV cache over a shared model, the inputs it has seen, and
//! the buffers its forward passes reuse.

mod input;
mod memory;
mod persist;

use std::sync::Arc;

pub use input::{Input, EMBEDDING_TOKEN};

use crate::error::{try_resize, Error, Result};
use crate::generate::CancelHandle;
use crate::kv_cache::{KvCache, KvType};
use crate::model::Engine;
use crate::model::{Model, Workspace};
use input::{EmbeddingSpan, History};

/// Most positions a session's context may hold (2^24, far beyond any model's training
/// context); larger requests are refused before anything is allocated.
pub const MAX_CTX: usize = 1 << 24;

/// How to create a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Context size in tokens (the KV cache holds this many; 0 = the model's training context).
    pub n_ctx: usize,
    /// KV cache element type.
    pub kv_type: KvType,
    /// Most positions evaluated in one forward pass (a micro-batch); prefill is cancelled
    /// and reports progress at this granularity.
    pub n_ubatch: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            n_ctx: 4096,
            kv_type: KvType::F16,
            n_ubatch: 512,
        }
    }
}

impl SessionOptions {
    /// Default options with a context of `n_ctx` tokens.
    pub fn with_ctx(n_ctx: usize) -> Self {
        Self {
            n_ctx,
            ..Self::default()
        }
    }
}

/// Which positions' logits an evaluation returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Logits {
    /// None (prompt prefill whose logits are not needed).
    None,
    /// Only the last position's.
    Last,
    /// Every position's, in order.
    All,
}

/// What an evaluation watches between micro-batches: a cancel handle and a progress callback.
type Watch<'a> = (&'a CancelHandle, &'a mut dyn FnMut(usize, usize));

/// One conversation: a KV cache and the inputs in it. Several sessions can share a model;
/// a session itself is used from one thread at a time (it is `Send`, not `Sync`).
pub struct Session {
    model: Arc<Model>,
    opts: SessionOptions,
    /// Where micro-batches run, with the KV cache.
    engine: Engine,
    history: History,
    ws: Workspace,
    /// Logits of the last evaluation, `n_vocab` per returned row.
    logits: Vec<f32>,
}

// Bindings move sessions between threads; keep it so.
const _: () = {
    const fn movable<T: Send>() {}
    movable::<Session>();
};

impl Session {
    /// A session with an empty context of `opts.n_ctx` tokens.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) for a zero
    /// micro-batch or a context over [`MAX_CTX`];
    /// [`ErrorKind::OutOfMemory`](crate::ErrorKind::OutOfMemory) when the KV cache cannot be
    /// allocated.
    pub fn new(model: Arc<Model>, opts: SessionOptions) -> Result<Self> {
        let mut opts = opts;
        if opts.n_ctx == 0 {
            opts.n_ctx = model.n_ctx_train().max(1);
        }
        if opts.n_ubatch == 0 {
            return Err(Error::InvalidArgument("n_ubatch must be at least 1".into()));
        }
        if opts.n_ctx > MAX_CTX {
            return Err(Error::InvalidArgument(format!(
                "n_ctx {} is larger than the most a session holds ({MAX_CTX})",
                opts.n_ctx
            )));
        }
        opts.n_ubatch = opts.n_ubatch.min(opts.n_ctx);
        let layout = model.kv_layout();
        let planned = KvCache::planned_bytes(opts.kv_type, &layout, opts.n_ctx, opts.n_ubatch)?;
        if let Some(available) = memory::available_bytes() {
            if planned > available {
                return Err(Error::OutOfMemory {
                    what: "the KV cache (more than this machine's free memory and swap)",
                    bytes: planned,
                });
            }
        }
        let engine = model.new_engine(opts.kv_type, opts.n_ctx, opts.n_ubatch)?;
        let ring_layers = layout
            .iter()
            .filter(|l| l.window.cells(opts.n_ctx, opts.n_ubatch) < opts.n_ctx)
            .count();
        tracing::info!(
            n_ctx = opts.n_ctx,
            kv_type = %opts.kv_type,
            kv_mib = engine.kv_bytes() as f64 / (1 << 20) as f64,
            full_layers = layout.len() - ring_layers,
            chunked_ring_layers = ring_layers,
            backend = model.backend().map(|b| b.describe()),
            "session created"
        );
        Ok(Self {
            model,
            opts,
            engine,
            history: History::default(),
            ws: Workspace::default(),
            logits: Vec::new(),
        })
    }

    /// The model.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// The options the session was created with (`n_ctx` resolved).
    pub fn options(&self) -> &SessionOptions {
        &self.opts
    }

    /// Context size in positions.
    pub fn n_ctx(&self) -> usize {
        self.opts.n_ctx
    }

    /// Positions in the context so far.
    pub fn n_past(&self) -> usize {
        self.history.tokens.len()
    }

    /// The token at each position of the context; positions that came from
    /// [`Input::Embeddings`] hold [`EMBEDDING_TOKEN`].
    pub fn tokens(&self) -> &[u32] {
        &self.history.tokens
    }

    /// Bytes held by the KV cache.
    pub fn kv_bytes(&self) -> usize {
        self.engine.kv_bytes()
    }

    /// Forgets the context.
    pub fn clear(&mut self) {
        self.history.clear();
        self.engine.clear();
    }

    /// Drops the context back to its first `n` positions (to rewind or reuse a prefix).
    ///
    /// # Errors
    /// [`Error::CannotRewind`] when chunked-attention layers (Llama 4) no longer hold what a
    /// query at `n` attends to: they keep only a ring of one chunk plus one micro-batch. The
    /// context is left as it was; clear the session and evaluate the prefix again instead.
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        if n >= self.n_past() {
            return Ok(());
        }
        if !self.engine.can_resume_at(n) {
            return Err(Error::CannotRewind {
                n,
                earliest: self.earliest_rewind(),
            });
        }
        self.history.truncate(n);
        Ok(())
    }

    /// Whether [`Session::truncate`] to `n` would succeed.
    pub fn can_truncate(&self, n: usize) -> bool {
        n >= self.n_past() || self.engine.can_resume_at(n)
    }

    /// The smallest `n >= 1` the session can rewind to with [`Session::truncate`] (1 when
    /// every layer still holds the whole context; rewinding to 0 is always possible and is
    /// the same as [`Session::clear`]).
    pub fn earliest_rewind(&self) -> usize {
        (1..=self.n_past())
            .find(|&n| self.engine.can_resume_at(n))
            .unwrap_or(self.n_past())
    }

    /// Keeps the longest prefix of the context that equals the start of `inputs` (a whole
    /// conversation, re-rendered each turn) and drops the rest, so only what is new needs
    /// evaluating: pass `Input::skip(inputs, kept)` to [`Session::generate`] or
    /// [`Session::eval`]. Returns `kept`.
    ///
    /// At least the last position of `inputs` is always left to evaluate (its logits are
    /// needed to continue). When a chunked layer cannot rewind that far the session is
    /// cleared and 0 is returned.
    pub fn reuse_prefix(&mut self, inputs: &[Input<'_>]) -> Result<usize> {
        let total = Input::total_len(inputs)?;
        let common = self.history.common_prefix(inputs);
        let kept = common.min(total.saturating_sub(1));
        if self.truncate(kept).is_err() {
            self.clear();
            return Ok(0);
        }
        tracing::debug!(kept, total, "prefix reused");
        Ok(kept)
    }

    /// A copy of this session (context, KV cache) that continues independently: e.g. one
    /// system prompt evaluated once, then forked per user.
    pub fn fork(&self) -> Result<Session> {
        let mut copy = Session::new(self.model.clone(), self.opts.clone())?;
        copy.engine.cpu_kv_mut()?.copy_from(self.engine.cpu_kv()?);
        copy.history = self.history.try_clone()?;
        Ok(copy)
    }

    /// Appends `inputs` to the context, evaluating them in micro-batches of at most
    /// `n_ubatch` positions, and returns the requested logits (`n_vocab` per returned row).
    /// The slice is valid until the session is used again.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for an id outside the vocabulary,
    /// [`Error::InvalidArgument`] for embeddings of the wrong width or with non-finite values,
    /// [`Error::ContextFull`] when the inputs do not fit; nothing is evaluated then.
    pub fn eval(&mut self, inputs: &[Input<'_>], logits: Logits) -> Result<&[f32]> {
        self.eval_with(inputs, logits, self.opts.n_ubatch, None)
    }

    /// [`Session::eval`] that checks `cancel` before every micro-batch: a long prompt (an
    /// image is thousands of positions) stops within one micro-batch of a cancel. The
    /// micro-batches evaluated before stay in the context.
    ///
    /// # Errors
    /// As [`Session::eval`], and [`Error::Cancelled`] when `cancel` was (or is) cancelled.
    pub fn eval_cancellable(
        &mut self,
        inputs: &[Input<'_>],
        logits: Logits,
        cancel: &CancelHandle,
    ) -> Result<&[f32]> {
        self.eval_with(
            inputs,
            logits,
            self.opts.n_ubatch,
            Some((cancel, &mut |_, _| {})),
        )
    }

    /// [`Session::eval_cancellable`] that also reports progress: `on_progress(done, total)`
    /// after every micro-batch (e.g. "reading the image… 40 %"). The callback may cancel
    /// `cancel`; the evaluation then stops before the next micro-batch.
    pub fn eval_with_progress(
        &mut self,
        inputs: &[Input<'_>],
        logits: Logits,
        cancel: &CancelHandle,
        on_progress: &mut dyn FnMut(usize, usize),
    ) -> Result<&[f32]> {
        self.eval_with(
            inputs,
            logits,
            self.opts.n_ubatch,
            Some((cancel, on_progress)),
        )
    }

    /// [`Session::eval`] with an explicit micro-batch size (1 = one position at a time);
    /// sizes above the session's `n_ubatch` are cut to it (the KV cache is shaped by it).
    pub fn eval_with_ubatch(
        &mut self,
        inputs: &[Input<'_>],
        logits: Logits,
        n_ubatch: usize,
    ) -> Result<&[f32]> {
        self.eval_with(inputs, logits, n_ubatch, None)
    }

    fn eval_with(
        &mut self,
        inputs: &[Input<'_>],
        logits: Logits,
        n_ubatch: usize,
        mut cancel: Option<Watch<'_>>,
    ) -> Result<&[f32]> {
        if n_ubatch == 0 {
            return Err(Error::InvalidArgument("n_ubatch must be at least 1".into()));
        }
        let total = self.check_inputs(inputs)?;
        let n_ubatch = n_ubatch.min(self.opts.n_ubatch);
        let n_vocab = self.model.n_vocab();
        let n_rows_out = match logits {
            Logits::None => 0,
            Logits::Last => usize::from(total > 0),
            Logits::All => total,
        };
        self.logits.clear();
        try_resize(&mut self.logits, n_rows_out * n_vocab, 0.0, "logits")?;
        // Embedding inputs are identified by content in the history (for prefix reuse);
        // token-only inputs allocate nothing here.
        let hashes: Vec<u64> = if inputs.iter().any(|i| matches!(i, Input::Embeddings { .. })) {
            inputs.iter().map(Input::content_hash).collect()
        } else {
            Vec::new()
        };
        let mut written = 0;
        let mut done = 0;
        while done < total {
            if cancel.as_ref().is_some_and(|(c, _)| c.is_cancelled()) {
                return Err(Error::Cancelled { evaluated: done });
            }
            let n = n_ubatch.min(total - done);
            self.fill_batch(inputs, done, n, logits, total)?;
            self.model.forward(&mut self.engine, &mut self.ws)?;
            let rows = &self.ws.logits;
            self.logits[written..written + rows.len()].copy_from_slice(rows);
            written += rows.len();
            self.history.push_batch(inputs, &hashes, done, n);
            done += n;
            if let Some((_, on_progress)) = cancel.as_mut() {
                on_progress(done, total);
            }
        }
        Ok(&self.logits)
    }

    /// Validates `inputs` against the model and the free context; returns their positions.
    fn check_inputs(&self, inputs: &[Input<'_>]) -> Result<usize> {
        let d = self.model.n_embd();
        for input in inputs {
            match *input {
                Input::Tokens(ids) => self.model.check_tokens(ids)?,
                Input::Embeddings { data, n } => {
                    if n.checked_mul(d) != Some(data.len()) {
                        return Err(Error::InvalidArgument(format!(
                            "embeddings hold {} floats, expected {n} rows of n_embd {d}",
                            data.len()
                        )));
                    }
                    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                        return Err(Error::InvalidArgument(format!(
                            "embedding value {i} is not finite ({})",
                            data[i]
                        )));
                    }
                }
            }
        }
        let total = Input::total_len(inputs)?;
        let needed = self.n_past().saturating_add(total);
        if needed > self.opts.n_ctx {
            return Err(Error::ContextFull {
                needed,
                n_ctx: self.opts.n_ctx,
            });
        }
        Ok(total)
    }

    /// Loads positions `first..first + n` of `inputs` into the workspace: their input rows,
    /// positions in the context and whether each one's logits are wanted.
    fn fill_batch(
        &mut self,
        inputs: &[Input<'_>],
        first: usize,
        n: usize,
        logits: Logits,
        total: usize,
    ) -> Result<()> {
        let hp = self.model.hparams();
        let d = hp.n_embd;
        self.ws.resize(hp, n)?;
        let start = self.n_past();
        self.ws.positions.clear();
        self.ws.positions.extend(start..start + n);
        self.ws.want.clear();
        self.ws
            .want
            .extend((first..first + n).map(|i| match logits {
                Logits::None => false,
                Logits::Last => i + 1 == total,
                Logits::All => true,
            }));
        let mut row = 0;
        for (_, _, piece) in Input::segments(inputs, first, n) {
            let rows = &mut self.ws.x[row * d..(row + piece.len()) * d];
            match piece {
                Input::Tokens(ids) => self.model.embed(ids, rows)?,
                Input::Embeddings { data, .. } => rows.copy_from_slice(data),
            }
            row += piece.len();
        }
        Ok(())
    }

    /// The spans of the context that came from embeddings.
    pub(crate) fn embedding_spans(&self) -> &[EmbeddingSpan] {
        &self.history.spans
    }
}

impl Engine {
    fn kv_bytes(&self) -> usize {
        match self {
            Engine::Cpu(kv) => kv.bytes(),
            Engine::Device(device) => device.kv_bytes(),
        }
    }

    fn clear(&mut self) {
        match self {
            Engine::Cpu(kv) => kv.clear(),
            // Positions are written before they are read: nothing to forget.
            Engine::Device(_) => {}
        }
    }

    /// Whether every layer still holds what a query at `pos` attends to.
    fn can_resume_at(&self, pos: usize) -> bool {
        match self {
            Engine::Cpu(kv) => kv.can_resume_at(pos),
            // Backends run models whose layers keep the whole context.
            Engine::Device(_) => true,
        }
    }

    /// The CPU cache, or an error for a session on a backend (whose cache stays there).
    pub(crate) fn cpu_kv(&self) -> Result<&KvCache> {
        match self {
            Engine::Cpu(kv) => Ok(kv),
            Engine::Device(_) => Err(on_device("copying or saving a session")),
        }
    }

    /// [`Engine::cpu_kv`], mutable.
    pub(crate) fn cpu_kv_mut(&mut self) -> Result<&mut KvCache> {
        match self {
            Engine::Cpu(kv) => Ok(kv),
            Engine::Device(_) => Err(on_device("copying or restoring a session")),
        }
    }
}

fn on_device(what: &str) -> Error {
    Error::Unsupported(format!(
        "{what} on a backend other than the CPU is not supported yet"
    ))
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("n_ctx", &self.opts.n_ctx)
            .field("n_past", &self.n_past())
            .field("kv_type", &self.opts.kv_type)
            .finish()
    }
}
