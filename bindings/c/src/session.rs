//! Sessions, generation, chat, cancel handles, save and restore.

use std::ffi::{c_char, c_void};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::sync::{Mutex, TryLockError};

use fennec_core::chat::ChatMessage;
use fennec_core::{
    CancelHandle, Completion, GenerateOptions, Input, KvType, Piece, SamplerOptions, Session,
    SessionOptions, StopReason,
};

use crate::model::fennec_model;
use crate::status::{guard, guard_void, FfiError, FfiResult};
use crate::{c_ref, c_slice, c_str, c_write, count, fennec_status};

/// One conversation: a KV cache over a model (opaque). Used by one thread at a time.
pub struct fennec_session {
    inner: Mutex<SessionState>,
}

struct SessionState {
    session: Session,
    /// The NUL-terminated text of the current piece, reused for every callback.
    piece: Vec<u8>,
}

impl fennec_session {
    fn boxed(session: Session) -> *mut fennec_session {
        Box::into_raw(Box::new(fennec_session {
            inner: Mutex::new(SessionState {
                session,
                piece: Vec::with_capacity(64),
            }),
        }))
    }

    /// The session, or `FENNEC_ERR_BUSY` when another call holds it.
    fn lock(&self) -> FfiResult<std::sync::MutexGuard<'_, SessionState>> {
        self.inner.try_lock().map_err(|e| match e {
            TryLockError::WouldBlock => FfiError::Busy,
            TryLockError::Poisoned(_) => {
                FfiError::Panic("the session was poisoned by an earlier panic; free it".into())
            }
        })
    }
}

/// A cancel handle (opaque): cancel a running generation from another thread (or from the
/// piece callback). Stays cancelled until `fennec_cancel_reset()`.
pub struct fennec_cancel {
    handle: CancelHandle,
}

impl fennec_cancel {
    /// A handle sharing this one's flag.
    pub(crate) fn handle(&self) -> CancelHandle {
        self.handle.clone()
    }
}

/// KV cache element types, for `fennec_session_options.kv_type`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum fennec_kv_type {
    /// 16-bit floats (the default).
    FENNEC_KV_F16 = 0,
    /// 32-bit floats: exact, largest.
    FENNEC_KV_F32 = 1,
    /// 8-bit blocks of 32 with an f16 scale: smallest.
    FENNEC_KV_Q8_0 = 2,
}

/// How to create a session. Get the defaults from `fennec_session_options_default()`;
/// passing NULL instead of a pointer to options means the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fennec_session_options {
    /// Context size in tokens (0 = the model's training context).
    pub n_ctx: u32,
    /// A `fennec_kv_type` value.
    pub kv_type: u32,
    /// Most positions evaluated in one forward pass (prefill is cancelled at this
    /// granularity).
    pub n_ubatch: u32,
}

/// What to generate. Get the defaults from `fennec_generate_options_default()`; passing
/// NULL instead of a pointer to options means the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fennec_generate_options {
    /// Most tokens to generate (0 = until the context is full).
    pub max_tokens: u32,
    /// Softmax temperature; 0 or less = greedy (argmax).
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: u32,
    /// Keep the smallest set whose probability reaches p (1 = all).
    pub top_p: f32,
    /// Drop tokens less likely than min_p times the most likely one (0 = none).
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recent tokens by this (1 = off).
    pub repeat_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub penalty_last_n: u32,
    /// Random seed.
    pub seed: u64,
    /// Strings that end generation when they appear (not included in the output); may be
    /// NULL when `n_stop_strings` is 0.
    pub stop_strings: *const *const c_char,
    /// Number of `stop_strings`.
    pub n_stop_strings: usize,
}

/// Why generation stopped.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum fennec_stop_reason {
    /// An end-of-generation token (EOS, end of turn, …).
    FENNEC_STOP_EOS = 0,
    /// `max_tokens` were generated.
    FENNEC_STOP_LENGTH = 1,
    /// A stop string appeared.
    FENNEC_STOP_STRING = 2,
    /// The context is full.
    FENNEC_STOP_CONTEXT_FULL = 3,
    /// The cancel handle was cancelled (during the prompt or generation).
    FENNEC_STOP_CANCELLED = 4,
    /// The piece callback returned false.
    FENNEC_STOP_CALLBACK = 5,
    /// A reason newer than this header.
    FENNEC_STOP_OTHER = 255,
}

/// The outcome of a generation call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fennec_completion {
    /// Why it stopped.
    pub stop: fennec_stop_reason,
    /// Prompt positions evaluated (new ones only: a reused prefix is not counted).
    pub prompt_tokens: u32,
    /// Tokens generated (the end-of-generation token included when it stopped on one).
    pub generated_tokens: u32,
    /// Seconds spent evaluating the prompt.
    pub prompt_seconds: f64,
    /// Seconds spent generating after the prompt.
    pub generation_seconds: f64,
    /// Seconds from the call to the first generated token.
    pub time_to_first_token: f64,
}

/// One chat message: `role` (`"system"`, `"user"`, `"assistant"`, …) and its text.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fennec_message {
    /// The role, NUL-terminated UTF-8.
    pub role: *const c_char,
    /// The text, NUL-terminated UTF-8.
    pub content: *const c_char,
}

/// Called with each piece of generated text as it becomes final: `text` is `len` bytes of
/// UTF-8, NUL-terminated, valid only during the call (possibly empty: a character split
/// across tokens). `token` is the id just generated, or -1 for the final call that flushes
/// held-back text. Return false to stop (`FENNEC_STOP_CALLBACK`). Runs on the calling thread.
pub type fennec_piece_callback = Option<
    unsafe extern "C" fn(text: *const c_char, len: usize, token: i32, user: *mut c_void) -> bool,
>;

/// Session defaults: a 4096-token context, an f16 KV cache, micro-batches of 512.
#[no_mangle]
pub extern "C" fn fennec_session_options_default() -> fennec_session_options {
    let d = SessionOptions::default();
    fennec_session_options {
        n_ctx: count(d.n_ctx),
        kv_type: fennec_kv_type::FENNEC_KV_F16 as u32,
        n_ubatch: count(d.n_ubatch),
    }
}

/// Generation defaults: until the context is full, temperature 0.8, top-k 40, top-p 0.95,
/// min-p 0.05, no repeat penalty, a fixed seed, no stop strings.
#[no_mangle]
pub extern "C" fn fennec_generate_options_default() -> fennec_generate_options {
    let s = SamplerOptions::default();
    fennec_generate_options {
        max_tokens: 0,
        temperature: s.temperature,
        top_k: count(s.top_k),
        top_p: s.top_p,
        min_p: s.min_p,
        repeat_penalty: s.repeat_penalty,
        penalty_last_n: count(s.penalty_last_n),
        seed: s.seed,
        stop_strings: std::ptr::null(),
        n_stop_strings: 0,
    }
}

fn session_options(o: &fennec_session_options) -> FfiResult<SessionOptions> {
    let kv_type = match o.kv_type {
        0 => KvType::F16,
        1 => KvType::F32,
        2 => KvType::Q8_0,
        other => {
            return Err(FfiError::InvalidArgument(format!(
                "kv_type {other} is not a fennec_kv_type"
            )))
        }
    };
    Ok(SessionOptions {
        n_ctx: o.n_ctx as usize,
        kv_type,
        n_ubatch: o.n_ubatch as usize,
    })
}

/// Generation options from their C form.
///
/// # Safety
/// `o.stop_strings` is NULL or valid for `o.n_stop_strings` string pointers.
unsafe fn generate_options(o: &fennec_generate_options) -> FfiResult<GenerateOptions> {
    // SAFETY: valid for n_stop_strings reads (caller's contract).
    let stops = unsafe { c_slice(o.stop_strings, o.n_stop_strings, "stop_strings") }?;
    let stop_strings = stops
        .iter()
        // SAFETY: each is NULL or a NUL-terminated string (caller's contract).
        .map(|&s| unsafe { c_str(s, "stop_strings[i]") }.map(str::to_owned))
        .collect::<FfiResult<Vec<_>>>()?;
    Ok(GenerateOptions {
        max_tokens: o.max_tokens as usize,
        sampler: SamplerOptions {
            temperature: o.temperature,
            top_k: o.top_k as usize,
            top_p: o.top_p,
            min_p: o.min_p,
            repeat_penalty: o.repeat_penalty,
            penalty_last_n: o.penalty_last_n as usize,
            seed: o.seed,
            ..SamplerOptions::default()
        },
        stop_strings,
        stop_tokens: Vec::new(),
    })
}

/// Creates a session on `model` with `options` (NULL = defaults) into `*out`. The session
/// holds its own reference to the model: `fennec_model_free()` may come first.
#[no_mangle]
pub unsafe extern "C" fn fennec_session_new(
    model: *const fennec_model,
    options: *const fennec_session_options,
    out: *mut *mut fennec_session,
) -> fennec_status {
    guard(|| {
        // SAFETY: `out` is NULL or writable (ABI contract).
        unsafe { c_write(out, std::ptr::null_mut(), "out") }?;
        // SAFETY: `model` is NULL or a live handle (ABI contract).
        let model = unsafe { c_ref(model, "model") }?.model.clone();
        // SAFETY: `options` is NULL or points to options (ABI contract).
        let opts = match unsafe { options.as_ref() } {
            Some(o) => session_options(o)?,
            None => SessionOptions::default(),
        };
        let session = Session::new(model, opts)?;
        // SAFETY: checked writable above.
        unsafe { out.write(fennec_session::boxed(session)) };
        Ok(())
    })
}

/// Releases a session (NULL is ignored). Must not be called while another thread uses it.
#[no_mangle]
pub unsafe extern "C" fn fennec_session_free(session: *mut fennec_session) {
    guard_void(|| {
        if !session.is_null() {
            // SAFETY: a non-NULL handle came from Box::into_raw here and is freed once, with
            // no call using it (ABI contract).
            drop(unsafe { Box::from_raw(session) });
        }
    })
}

/// Forgets the session's context (the KV cache is kept allocated).
#[no_mangle]
pub unsafe extern "C" fn fennec_session_reset(session: *mut fennec_session) -> fennec_status {
    guard(|| {
        // SAFETY: `session` is NULL or a live handle (ABI contract).
        unsafe { c_ref(session, "session") }?
            .lock()?
            .session
            .clear();
        Ok(())
    })
}

/// Sizes of a session, from `fennec_session_get_info()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fennec_session_info {
    /// Context size in positions.
    pub n_ctx: u32,
    /// Positions in the context so far.
    pub n_past: u32,
    /// Bytes held by the KV cache.
    pub kv_bytes: u64,
}

/// Writes the session's sizes into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fennec_session_get_info(
    session: *const fennec_session,
    out: *mut fennec_session_info,
) -> fennec_status {
    guard(|| {
        // SAFETY: `session` is NULL or a live handle (ABI contract).
        let state = unsafe { c_ref(session, "session") }?.lock()?;
        let info = fennec_session_info {
            n_ctx: count(state.session.n_ctx()),
            n_past: count(state.session.n_past()),
            kv_bytes: state.session.kv_bytes() as u64,
        };
        // SAFETY: `out` is NULL or writable (ABI contract).
        unsafe { c_write(out, info, "out") }
    })
}

fn stop_reason(stop: StopReason) -> fennec_stop_reason {
    use fennec_stop_reason::*;
    match stop {
        StopReason::Eos => FENNEC_STOP_EOS,
        StopReason::Length => FENNEC_STOP_LENGTH,
        StopReason::StopString => FENNEC_STOP_STRING,
        StopReason::ContextFull => FENNEC_STOP_CONTEXT_FULL,
        StopReason::Cancelled => FENNEC_STOP_CANCELLED,
        StopReason::Callback => FENNEC_STOP_CALLBACK,
        _ => FENNEC_STOP_OTHER,
    }
}

/// Passes one piece to the C callback: its text copied NUL-terminated into `buf` (reused, so
/// no allocation once it has grown), its token id or -1.
///
/// # Safety
/// `on_piece` is NULL or a valid function; `user` is what the caller gave with it.
pub(crate) unsafe fn forward_piece(
    buf: &mut Vec<u8>,
    on_piece: fennec_piece_callback,
    user: *mut c_void,
    p: Piece<'_>,
) -> bool {
    let Some(cb) = on_piece else { return true };
    buf.clear();
    buf.extend_from_slice(p.text.as_bytes());
    buf.push(0);
    let token = p.token.map_or(-1, |t| i32::try_from(t).unwrap_or(i32::MAX));
    // SAFETY: `cb` is a valid function (caller's contract); the text is NUL-terminated and
    // lives until the call returns; `user` is passed through untouched.
    unsafe { cb(buf.as_ptr().cast(), p.text.len(), token, user) }
}

/// The common part of every generating call: checks the handles, converts the options,
/// runs `run` with a piece callback that forwards to C, writes the completion.
///
/// # Safety
/// The pointers follow the ABI contract of `fennec_session_generate`.
#[allow(clippy::too_many_arguments)]
unsafe fn generate_with(
    session: *mut fennec_session,
    options: *const fennec_generate_options,
    cancel: *const fennec_cancel,
    on_piece: fennec_piece_callback,
    user: *mut c_void,
    out: *mut fennec_completion,
    run: impl FnOnce(
        &mut Session,
        &GenerateOptions,
        &CancelHandle,
        &mut dyn FnMut(Piece<'_>) -> bool,
    ) -> fennec_core::Result<Completion>,
) -> FfiResult {
    // SAFETY: `session` is NULL or a live handle (ABI contract).
    let handle = unsafe { c_ref(session, "session") }?;
    // SAFETY: `options` is NULL or points to options (ABI contract).
    let opts = match unsafe { options.as_ref() } {
        // SAFETY: its stop strings follow the ABI contract.
        Some(o) => unsafe { generate_options(o) }?,
        None => GenerateOptions {
            sampler: SamplerOptions::default(),
            ..GenerateOptions::default()
        },
    };
    // SAFETY: `cancel` is NULL or a live handle (ABI contract). The clone shares the flag.
    let cancel = match unsafe { cancel.as_ref() } {
        Some(c) => c.handle.clone(),
        None => CancelHandle::new(),
    };
    let mut guard = handle.lock()?;
    let SessionState { session, piece } = &mut *guard;
    let mut forward = |p: Piece<'_>| -> bool {
        // SAFETY: `on_piece` and `user` follow the ABI contract.
        unsafe { forward_piece(piece, on_piece, user, p) }
    };
    let done = run(session, &opts, &cancel, &mut forward)?;
    if !out.is_null() {
        let completion = fennec_completion {
            stop: stop_reason(done.stop),
            prompt_tokens: count(done.stats.prompt_tokens),
            generated_tokens: count(done.stats.generated_tokens),
            prompt_seconds: done.stats.prompt_seconds,
            generation_seconds: done.stats.generation_seconds,
            time_to_first_token: done.stats.time_to_first_token,
        };
        // SAFETY: non-NULL and writable (ABI contract).
        unsafe { out.write(completion) };
    }
    Ok(())
}

/// Answers a conversation: renders `messages` (`n_messages` of them) with the model's chat
/// template, keeps the part of the session's context that equals the rendering (so calling
/// it each turn with the whole conversation, replies included, evaluates only the new turn)
/// and generates the assistant's reply, streaming it through `on_piece` (may be NULL).
///
/// `options` NULL = defaults; `cancel` may be NULL; `out` (may be NULL) receives the counts,
/// timings and stop reason. A cancel is not an error: it returns `FENNEC_OK` with
/// `FENNEC_STOP_CANCELLED`.
#[no_mangle]
pub unsafe extern "C" fn fennec_session_chat(
    session: *mut fennec_session,
    messages: *const fennec_message,
    n_messages: usize,
    options: *const fennec_generate_options,
    cancel: *const fennec_cancel,
    on_piece: fennec_piece_callback,
    user: *mut c_void,
    out: *mut fennec_completion,
) -> fennec_status {
    guard(|| {
        // SAFETY: `messages` is valid for `n_messages` reads (ABI contract).
        let messages = unsafe { c_slice(messages, n_messages, "messages") }?;
        let messages = messages
            .iter()
            .map(|m| {
                // SAFETY: each field is NULL or a NUL-terminated string (ABI contract).
                let role = unsafe { c_str(m.role, "messages[i].role") }?;
                // SAFETY: as above.
                let content = unsafe { c_str(m.content, "messages[i].content") }?;
                Ok(ChatMessage::new(role, content))
            })
            .collect::<FfiResult<Vec<_>>>()?;
        // SAFETY: the pointers follow the ABI contract.
        unsafe {
            generate_with(
                session,
                options,
                cancel,
                on_piece,
                user,
                out,
                |s, o, c, f| s.chat(&messages, o, c, f),
            )
        }
    })
}

/// Generates after `prompt`, a raw text appended to what the session holds (no chat
/// template). It is tokenized with control-token texts parsed, and with BOS prepended when
/// the session is empty. Otherwise as `fennec_session_chat()`.
#[no_mangle]
pub unsafe extern "C" fn fennec_session_generate(
    session: *mut fennec_session,
    prompt: *const c_char,
    options: *const fennec_generate_options,
    cancel: *const fennec_cancel,
    on_piece: fennec_piece_callback,
    user: *mut c_void,
    out: *mut fennec_completion,
) -> fennec_status {
    guard(|| {
        // SAFETY: `prompt` is NULL or a NUL-terminated string (ABI contract).
        let prompt = unsafe { c_str(prompt, "prompt") }?;
        // SAFETY: the pointers follow the ABI contract.
        unsafe {
            generate_with(
                session,
                options,
                cancel,
                on_piece,
                user,
                out,
                |s, o, c, f| {
                    let ids = s.model().encode(prompt, s.n_past() == 0, true)?;
                    s.generate(&[Input::Tokens(&ids)], o, c, f)
                },
            )
        }
    })
}

/// Generates after `n_tokens` token ids appended to what the session holds. Otherwise as
/// `fennec_session_chat()`.
#[no_mangle]
pub unsafe extern "C" fn fennec_session_generate_tokens(
    session: *mut fennec_session,
    tokens: *const u32,
    n_tokens: usize,
    options: *const fennec_generate_options,
    cancel: *const fennec_cancel,
    on_piece: fennec_piece_callback,
    user: *mut c_void,
    out: *mut fennec_completion,
) -> fennec_status {
    guard(|| {
        // SAFETY: `tokens` is valid for `n_tokens` reads (ABI contract).
        let ids = unsafe { c_slice(tokens, n_tokens, "tokens") }?;
        // SAFETY: the pointers follow the ABI contract.
        unsafe {
            generate_with(
                session,
                options,
                cancel,
                on_piece,
                user,
                out,
                |s, o, c, f| s.generate(&[Input::Tokens(ids)], o, c, f),
            )
        }
    })
}

/// Creates a cancel handle into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fennec_cancel_new(out: *mut *mut fennec_cancel) -> fennec_status {
    guard(|| {
        let handle = Box::into_raw(Box::new(fennec_cancel {
            handle: CancelHandle::new(),
        }));
        // SAFETY: `out` is NULL or writable (ABI contract).
        let written = unsafe { c_write(out, handle, "out") };
        if written.is_err() {
            // SAFETY: just created by Box::into_raw and not shared.
            drop(unsafe { Box::from_raw(handle) });
        }
        written
    })
}

/// Asks the work using `cancel` to stop: prefill within one micro-batch, generation after
/// the current token. Safe to call from any thread, and from the piece callback.
#[no_mangle]
pub unsafe extern "C" fn fennec_cancel_cancel(cancel: *const fennec_cancel) -> fennec_status {
    guard(|| {
        // SAFETY: `cancel` is NULL or a live handle (ABI contract).
        unsafe { c_ref(cancel, "cancel") }?.handle.cancel();
        Ok(())
    })
}

/// Clears a cancellation so the handle can be used again.
#[no_mangle]
pub unsafe extern "C" fn fennec_cancel_reset(cancel: *const fennec_cancel) -> fennec_status {
    guard(|| {
        // SAFETY: `cancel` is NULL or a live handle (ABI contract).
        unsafe { c_ref(cancel, "cancel") }?.handle.reset();
        Ok(())
    })
}

/// Whether the handle is cancelled (false for NULL).
#[no_mangle]
pub unsafe extern "C" fn fennec_cancel_is_cancelled(cancel: *const fennec_cancel) -> bool {
    // SAFETY: `cancel` is NULL or a live handle (ABI contract). No code here can panic.
    unsafe { cancel.as_ref() }.is_some_and(|c| c.handle.is_cancelled())
}

/// Releases a cancel handle (NULL is ignored). A generation running with it keeps working
/// (it holds its own reference), but no one can cancel it through this handle any more.
#[no_mangle]
pub unsafe extern "C" fn fennec_cancel_free(cancel: *mut fennec_cancel) {
    guard_void(|| {
        if !cancel.is_null() {
            // SAFETY: created by Box::into_raw in fennec_cancel_new, freed once.
            drop(unsafe { Box::from_raw(cancel) });
        }
    })
}

/// Saves the session (its inputs and occupied KV cells, tied to the model) to the file at
/// `path`, replacing it.
#[no_mangle]
pub unsafe extern "C" fn fennec_session_save_file(
    session: *const fennec_session,
    path: *const c_char,
) -> fennec_status {
    guard(|| {
        // SAFETY: `session` is NULL or a live handle (ABI contract).
        let handle = unsafe { c_ref(session, "session") }?;
        // SAFETY: `path` is NULL or a NUL-terminated string (ABI contract).
        let path = unsafe { c_str(path, "path") }?;
        let state = handle.lock()?;
        let file = File::create(path).map_err(|source| FfiError::File {
            path: path.to_owned(),
            source,
        })?;
        let mut w = BufWriter::new(file);
        state.session.save(&mut w)?;
        w.flush().map_err(|source| FfiError::File {
            path: path.to_owned(),
            source,
        })?;
        Ok(())
    })
}

/// Restores a session saved by `fennec_session_save_file()` into a new session `*out`, with
/// the options it was saved with. `FENNEC_ERR_SESSION_MISMATCH` when it was saved with
/// another model, `FENNEC_ERR_CORRUPT_SESSION` when damaged.
#[no_mangle]
pub unsafe extern "C" fn fennec_session_restore_file(
    model: *const fennec_model,
    path: *const c_char,
    out: *mut *mut fennec_session,
) -> fennec_status {
    guard(|| {
        // SAFETY: `out` is NULL or writable (ABI contract).
        unsafe { c_write(out, std::ptr::null_mut(), "out") }?;
        // SAFETY: `model` is NULL or a live handle (ABI contract).
        let model = unsafe { c_ref(model, "model") }?.model.clone();
        // SAFETY: `path` is NULL or a NUL-terminated string (ABI contract).
        let path = unsafe { c_str(path, "path") }?;
        let file = File::open(path).map_err(|source| FfiError::File {
            path: path.to_owned(),
            source,
        })?;
        let session = Session::restore(model, &mut BufReader::new(file))?;
        // SAFETY: checked writable above.
        unsafe { out.write(fennec_session::boxed(session)) };
        Ok(())
    })
}

/// Saves the session into a new buffer: `*data` and `*len` receive it; release it with
/// `fennec_buffer_free(*data, *len)`.
#[no_mangle]
pub unsafe extern "C" fn fennec_session_save_buffer(
    session: *const fennec_session,
    data: *mut *mut u8,
    len: *mut usize,
) -> fennec_status {
    guard(|| {
        // SAFETY: `session` is NULL or a live handle (ABI contract).
        let handle = unsafe { c_ref(session, "session") }?;
        if data.is_null() {
            return Err(FfiError::Null("data"));
        }
        if len.is_null() {
            return Err(FfiError::Null("len"));
        }
        let mut bytes = Vec::new();
        handle.lock()?.session.save(&mut bytes)?;
        let boxed = bytes.into_boxed_slice();
        let n = boxed.len();
        let ptr = Box::into_raw(boxed).cast::<u8>();
        // SAFETY: both checked non-NULL; writable (ABI contract).
        unsafe {
            data.write(ptr);
            len.write(n);
        }
        Ok(())
    })
}

/// Releases a buffer from `fennec_session_save_buffer()` (NULL is ignored); `len` must be
/// the length it returned.
#[no_mangle]
pub unsafe extern "C" fn fennec_buffer_free(data: *mut u8, len: usize) {
    guard_void(|| {
        if !data.is_null() {
            let slice = std::ptr::slice_from_raw_parts_mut(data, len);
            // SAFETY: `data`/`len` came from Box::into_raw of a boxed slice of that length
            // in fennec_session_save_buffer and are freed once (ABI contract).
            drop(unsafe { Box::from_raw(slice) });
        }
    })
}

/// Restores a session from `len` bytes written by `fennec_session_save_buffer()` (or read
/// from a file `fennec_session_save_file()` wrote) into a new session `*out`.
#[no_mangle]
pub unsafe extern "C" fn fennec_session_restore_buffer(
    model: *const fennec_model,
    data: *const u8,
    len: usize,
    out: *mut *mut fennec_session,
) -> fennec_status {
    guard(|| {
        // SAFETY: `out` is NULL or writable (ABI contract).
        unsafe { c_write(out, std::ptr::null_mut(), "out") }?;
        // SAFETY: `model` is NULL or a live handle (ABI contract).
        let model = unsafe { c_ref(model, "model") }?.model.clone();
        // SAFETY: `data` is valid for `len` reads (ABI contract).
        let mut bytes = unsafe { c_slice(data, len, "data") }?;
        let session = Session::restore(model, &mut bytes)?;
        // SAFETY: checked writable above.
        unsafe { out.write(fennec_session::boxed(session)) };
        Ok(())
    })
}

/// A copy of the session (context and KV cache) into `*out` that continues independently:
/// e.g. one system prompt evaluated once, then forked per user.
#[no_mangle]
pub unsafe extern "C" fn fennec_session_fork(
    session: *const fennec_session,
    out: *mut *mut fennec_session,
) -> fennec_status {
    guard(|| {
        // SAFETY: `out` is NULL or writable (ABI contract).
        unsafe { c_write(out, std::ptr::null_mut(), "out") }?;
        // SAFETY: `session` is NULL or a live handle (ABI contract).
        let copy = unsafe { c_ref(session, "session") }?
            .lock()?
            .session
            .fork()?;
        // SAFETY: checked writable above.
        unsafe { out.write(fennec_session::boxed(copy)) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    unsafe extern "C" fn count_bytes(
        _text: *const c_char,
        len: usize,
        _token: i32,
        user: *mut c_void,
    ) -> bool {
        // SAFETY: the benchmark passes a pointer to a live usize.
        unsafe { *user.cast::<usize>() += len };
        true
    }

    /// The cost of one piece through the C callback path (copy into the reused buffer, NUL,
    /// indirect call) against a Rust closure. `cargo test -p fennec-c --release --lib
    /// callback_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement: run explicitly"]
    fn callback_cost() {
        const N: usize = 10_000_000;
        let text = " Paris";
        let mut buf = Vec::new();
        let mut total = 0usize;
        let user = (&mut total as *mut usize).cast::<c_void>();
        let t = Instant::now();
        for i in 0..N {
            let p = Piece {
                token: Some(i as u32 & 0xffff),
                text: std::hint::black_box(text),
            };
            // SAFETY: count_bytes is valid and `user` points to `total`.
            std::hint::black_box(unsafe { forward_piece(&mut buf, Some(count_bytes), user, p) });
        }
        let c_ns = t.elapsed().as_nanos() as f64 / N as f64;
        let mut rust_total = 0usize;
        let mut closure = |p: Piece<'_>| {
            rust_total += p.text.len();
            true
        };
        let f: &mut dyn FnMut(Piece<'_>) -> bool = &mut closure;
        let t = Instant::now();
        for i in 0..N {
            let p = Piece {
                token: Some(i as u32 & 0xffff),
                text: std::hint::black_box(text),
            };
            std::hint::black_box(f(p));
        }
        let rust_ns = t.elapsed().as_nanos() as f64 / N as f64;
        assert_eq!(total, N * text.len());
        println!(
            "piece through the C callback: {c_ns:.2} ns; through a Rust closure: {rust_ns:.2} ns"
        );
    }
}
