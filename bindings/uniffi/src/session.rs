//! Sessions: a context on a model, generating with streaming and cancellation.

use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard};

use fennec_core::{CancelHandle, Input};

use crate::error::{FennecError, Result};
use crate::model::Model;
use crate::options::{ChatMessage, Completion, GenerateOptions, Piece, SessionOptions};

/// Receives generated text as it becomes final. Called on the thread that runs the
/// generation; return `false` to stop (the result's stop reason is then `Listener`).
#[uniffi::export(with_foreign)]
pub trait PieceListener: Send + Sync {
    /// One piece of output.
    fn on_piece(&self, piece: Piece) -> bool;
}

/// Stops a running generation from any thread: the prompt within one micro-batch,
/// generation after the current token. Stays cancelled until [`CancelToken::reset`].
#[derive(Debug, Default, uniffi::Object)]
pub struct CancelToken(CancelHandle);

#[uniffi::export]
impl CancelToken {
    /// A token that has not been cancelled.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Asks the work using this token to stop.
    pub fn cancel(&self) {
        self.0.cancel();
    }

    /// Whether cancel was called (since the last reset).
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Clears a cancellation so the token can be used again.
    pub fn reset(&self) {
        self.0.reset();
    }
}

impl CancelToken {
    /// A token sharing `handle`'s flag.
    pub(crate) fn from_handle(handle: CancelHandle) -> Self {
        Self(handle)
    }

    /// A handle sharing this token's flag.
    pub(crate) fn handle(&self) -> CancelHandle {
        self.0.clone()
    }
}

/// A conversation's context (its KV cache) on a model. Calls on one session run one at a
/// time (a second caller waits); use one session per concurrent conversation.
#[derive(uniffi::Object)]
pub struct Session {
    model: Arc<Model>,
    inner: Mutex<fennec_core::Session>,
}

#[uniffi::export]
impl Session {
    /// An empty session on `model` with its own context of `options.n_ctx` tokens.
    #[uniffi::constructor]
    pub fn new(model: Arc<Model>, options: SessionOptions) -> Result<Arc<Self>> {
        let inner = fennec_core::Session::new(model.text.clone(), (&options).into())?;
        Ok(Self::wrap(model, inner))
    }

    /// A session saved by [`Session::save`] on the same model.
    #[uniffi::constructor]
    pub fn restore(model: Arc<Model>, path: String) -> Result<Arc<Self>> {
        let mut file = std::fs::File::open(&path)
            .map_err(|e| FennecError::Io(format!("cannot open session {path}: {e}")))?;
        let inner = fennec_core::Session::restore(model.text.clone(), &mut file)?;
        Ok(Self::wrap(model, inner))
    }

    /// A session saved by [`Session::to_bytes`] on the same model.
    #[uniffi::constructor]
    pub fn from_bytes(model: Arc<Model>, bytes: Vec<u8>) -> Result<Arc<Self>> {
        let inner = fennec_core::Session::restore(model.text.clone(), &mut Cursor::new(bytes))?;
        Ok(Self::wrap(model, inner))
    }

    /// Answers a conversation: the whole conversation each turn (the model's earlier replies
    /// included); the part of the context that equals its start is kept, so only the new
    /// turn is evaluated. Images are encoded (or found in the model's cache) first.
    #[uniffi::method(default(listener = None, cancel = None))]
    pub fn chat(
        &self,
        messages: Vec<ChatMessage>,
        options: GenerateOptions,
        listener: Option<Arc<dyn PieceListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<Completion> {
        let cancel = cancel.map_or_else(CancelHandle::new, |c| c.0.clone());
        let (messages, image_seconds) = self.model.core_messages(&messages, &cancel)?;
        let mut session = self.lock();
        let done = session.chat(
            &messages,
            &(&options).into(),
            &cancel,
            &mut forward(listener.as_deref()),
        )?;
        Ok(Completion::from_core(done, image_seconds))
    }

    /// Continues the context with raw `text` (special tokens written in it are parsed; the
    /// beginning-of-sequence token is added to an empty context when the model asks for it).
    #[uniffi::method(default(listener = None, cancel = None))]
    pub fn generate(
        &self,
        text: String,
        options: GenerateOptions,
        listener: Option<Arc<dyn PieceListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<Completion> {
        let mut session = self.lock();
        let add_bos =
            session.n_past() == 0 && session.model().tokenizer().is_ok_and(|t| t.add_bos_token());
        let tokens = session.model().encode(&text, add_bos, true)?;
        run(&mut session, &tokens, &options, listener, cancel)
    }

    /// Continues the context with token ids.
    #[uniffi::method(default(listener = None, cancel = None))]
    pub fn generate_tokens(
        &self,
        tokens: Vec<u32>,
        options: GenerateOptions,
        listener: Option<Arc<dyn PieceListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<Completion> {
        run(&mut self.lock(), &tokens, &options, listener, cancel)
    }

    /// Writes the session (context tokens and KV cache) to a file.
    pub fn save(&self, path: String) -> Result<()> {
        let mut file = std::fs::File::create(&path)
            .map_err(|e| FennecError::Io(format!("cannot create {path}: {e}")))?;
        self.lock().save(&mut file)?;
        Ok(())
    }

    /// The session as bytes, for [`Session::from_bytes`].
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.lock().save(&mut out)?;
        Ok(out)
    }

    /// A copy that continues independently (e.g. one system prompt evaluated once, then one
    /// copy per user).
    pub fn fork(&self) -> Result<Arc<Self>> {
        let copy = self.lock().fork()?;
        Ok(Self::wrap(self.model.clone(), copy))
    }

    /// Empties the context.
    pub fn reset(&self) {
        self.lock().clear();
    }

    /// Positions the context holds.
    pub fn n_past(&self) -> u32 {
        self.lock().n_past() as u32
    }

    /// The context's size in tokens.
    pub fn n_ctx(&self) -> u32 {
        self.lock().n_ctx() as u32
    }

    /// The token ids in the context (image positions read as the embedding marker id).
    pub fn tokens(&self) -> Vec<u32> {
        self.lock().tokens().to_vec()
    }

    /// Bytes of the session's KV cache.
    pub fn kv_bytes(&self) -> u64 {
        self.lock().kv_bytes() as u64
    }
}

impl Session {
    fn wrap(model: Arc<Model>, inner: fennec_core::Session) -> Arc<Self> {
        Arc::new(Self {
            model,
            inner: Mutex::new(inner),
        })
    }

    fn lock(&self) -> MutexGuard<'_, fennec_core::Session> {
        // A panic inside a call is turned into an error by uniffi; the session it left
        // behind is still memory-safe to use.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn run(
    session: &mut fennec_core::Session,
    tokens: &[u32],
    options: &GenerateOptions,
    listener: Option<Arc<dyn PieceListener>>,
    cancel: Option<Arc<CancelToken>>,
) -> Result<Completion> {
    let cancel = cancel.map_or_else(CancelHandle::new, |c| c.0.clone());
    let done = session.generate(
        &[Input::Tokens(tokens)],
        &options.into(),
        &cancel,
        &mut forward(listener.as_deref()),
    )?;
    Ok(Completion::from_core(done, 0.0))
}

/// The core callback that passes each piece to `listener` (or accepts them all).
fn forward(
    listener: Option<&dyn PieceListener>,
) -> impl FnMut(fennec_core::Piece<'_>) -> bool + '_ {
    move |piece| match listener {
        Some(l) => l.on_piece(Piece {
            text: piece.text.to_string(),
            token: piece.token,
        }),
        None => true,
    }
}

/// Calls `listener` `calls` times with a typical piece (a few bytes of text and a token id)
/// and returns the mean nanoseconds per call: what streaming costs per token through a
/// binding, to compare with a token's compute time. A diagnostic; generation does not use it.
#[uniffi::export]
pub fn measure_listener_ns(listener: Arc<dyn PieceListener>, calls: u32) -> f64 {
    let start = std::time::Instant::now();
    let mut on_piece = forward(Some(listener.as_ref()));
    for i in 0..calls {
        on_piece(fennec_core::Piece {
            token: Some(i),
            text: " Paris",
        });
    }
    start.elapsed().as_nanos() as f64 / f64::from(calls.max(1))
}
