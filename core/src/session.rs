//! A session: one conversation's KV cache over a shared model.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::kv_cache::{KvCache, KvType};
use crate::model::Model;

/// How to create a session.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Context size in tokens (the KV cache holds this many; 0 = the model's training context).
    pub n_ctx: usize,
    /// KV cache element type.
    pub kv_type: KvType,
    /// Most tokens evaluated in one forward pass.
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

/// Which positions' logits an evaluation returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// None (prompt prefill whose logits are not needed).
    None,
    /// Only the last token's.
    Last,
    /// Every token's, in order.
    All,
}

/// One conversation: a KV cache and the tokens in it. Several sessions can share a model.
pub struct Session {
    model: Arc<Model>,
    opts: SessionOptions,
    kv: KvCache,
    tokens: Vec<u32>,
}

impl Session {
    /// A session with an empty context of `opts.n_ctx` tokens.
    pub fn new(model: Arc<Model>, opts: SessionOptions) -> Result<Self> {
        let mut opts = opts;
        if opts.n_ctx == 0 {
            opts.n_ctx = model.n_ctx_train();
        }
        if opts.n_ubatch == 0 {
            return Err(Error::InvalidArgument("n_ubatch must be at least 1".into()));
        }
        let layout = model.kv_layout();
        let kv = KvCache::new(opts.kv_type, &layout, opts.n_ctx, opts.n_ubatch)?;
        let ring_layers = kv
            .layers
            .iter()
            .filter(|l| l.n_cells() < opts.n_ctx)
            .count();
        tracing::info!(
            n_ctx = opts.n_ctx,
            kv_type = %opts.kv_type,
            kv_mib = kv.bytes() as f64 / (1 << 20) as f64,
            full_layers = layout.len() - ring_layers,
            chunked_ring_layers = ring_layers,
            "session created"
        );
        Ok(Self {
            model,
            opts,
            kv,
            tokens: Vec::new(),
        })
    }

    /// The model.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Context size in tokens.
    pub fn n_ctx(&self) -> usize {
        self.opts.n_ctx
    }

    /// Tokens in the context so far.
    pub fn n_past(&self) -> usize {
        self.tokens.len()
    }

    /// The tokens in the context.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Bytes held by the KV cache.
    pub fn kv_bytes(&self) -> usize {
        self.kv.bytes()
    }

    /// Forgets the context.
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.kv.clear();
    }

    /// Drops the context back to its first `n` tokens (to rewind or reuse a prefix).
    ///
    /// Chunked-attention layers keep only a ring of recent positions, so rewinding further
    /// back than the ring reaches is refused (the context is left as it was); clear the
    /// session and evaluate the prefix again instead.
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        if n >= self.tokens.len() {
            return Ok(());
        }
        if !self.kv.can_resume_at(n) {
            return Err(Error::InvalidArgument(format!(
                "cannot rewind to {n} tokens: chunked-attention layers no longer hold them \
                 (they keep one chunk plus one micro-batch); clear the session instead"
            )));
        }
        self.tokens.truncate(n);
        Ok(())
    }

    /// Tokens `n` and later can be dropped with [`Session::truncate`] (rewinding to `n`).
    pub fn can_truncate(&self, n: usize) -> bool {
        n >= self.tokens.len() || self.kv.can_resume_at(n)
    }

    /// Appends `tokens` to the context, evaluating them in micro-batches of at most
    /// `n_ubatch`, and returns the requested logits (`n_vocab` per returned row).
    pub fn eval(&mut self, tokens: &[u32], logits: Logits) -> Result<Vec<f32>> {
        self.eval_with_ubatch(tokens, logits, self.opts.n_ubatch)
    }

    /// [`Session::eval`] with an explicit micro-batch size (1 = one token at a time); sizes
    /// above the session's `n_ubatch` are cut to it (the KV cache is shaped by it).
    pub fn eval_with_ubatch(
        &mut self,
        tokens: &[u32],
        logits: Logits,
        n_ubatch: usize,
    ) -> Result<Vec<f32>> {
        let n_vocab = self.model.n_vocab();
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(Error::InvalidToken { id, n_vocab });
        }
        let needed = self.tokens.len() + tokens.len();
        if needed > self.opts.n_ctx {
            return Err(Error::ContextFull {
                needed,
                n_ctx: self.opts.n_ctx,
            });
        }
        if n_ubatch == 0 {
            return Err(Error::InvalidArgument("n_ubatch must be at least 1".into()));
        }
        let n_ubatch = n_ubatch.min(self.opts.n_ubatch);
        let mut out = Vec::new();
        let total = tokens.len();
        for (chunk_index, chunk) in tokens.chunks(n_ubatch).enumerate() {
            let first = chunk_index * n_ubatch;
            let start = self.tokens.len();
            let positions: Vec<usize> = (start..start + chunk.len()).collect();
            let want: Vec<bool> = (first..first + chunk.len())
                .map(|i| match logits {
                    Logits::None => false,
                    Logits::Last => i + 1 == total,
                    Logits::All => true,
                })
                .collect();
            let rows = self.model.forward(&mut self.kv, chunk, &positions, &want)?;
            out.extend_from_slice(&rows);
            self.tokens.extend_from_slice(chunk);
        }
        Ok(out)
    }
}
