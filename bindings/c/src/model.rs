//! Models: load, describe, tokenize, free.

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use fennec_core::{LoadOptions, Model};

use crate::status::{guard, guard_void, FfiError};
use crate::{c_ref, c_slice, c_str, c_write, count, fennec_status};

/// A loaded model (opaque). Shared by any number of sessions and threads.
pub struct fennec_model {
    pub(crate) model: Arc<Model>,
}

/// How to load a model. Get the defaults from `fennec_load_options_default()`; passing NULL
/// instead of a pointer to options means the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fennec_load_options {
    /// Worker threads (0 = one per core).
    pub n_threads: u32,
    /// Microseconds an idle worker spins before it sleeps (0 saves battery; the default
    /// makes the small ops of a decoded token start fastest).
    pub idle_spin_us: u32,
}

/// Facts about a loaded model, from `fennec_model_get_info()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct fennec_model_info {
    /// `general.architecture` as a static string: `"llama"` or `"llama4"`.
    pub architecture: *const c_char,
    /// Context length the model was trained with.
    pub n_ctx_train: u32,
    /// Vocabulary size.
    pub n_vocab: u32,
    /// Width of the residual stream.
    pub n_embd: u32,
    /// Transformer layers.
    pub n_layer: u32,
    /// Worker threads.
    pub n_threads: u32,
}

/// The default load options: one worker thread per core, the default idle spin.
#[no_mangle]
pub extern "C" fn fennec_load_options_default() -> fennec_load_options {
    let d = LoadOptions::default();
    fennec_load_options {
        n_threads: count(d.n_threads),
        idle_spin_us: u32::try_from(d.idle_spin.as_micros()).unwrap_or(u32::MAX),
    }
}

/// Loads (memory-maps and validates) the GGUF model at `path` with `options` (NULL =
/// defaults) into `*out`.
///
/// Errors: `FENNEC_ERR_IO` when the file cannot be read, `FENNEC_ERR_INVALID_GGUF` when it is
/// not valid GGUF, `FENNEC_ERR_UNSUPPORTED` / `FENNEC_ERR_INVALID_MODEL` for a model Fennec
/// cannot run. `*out` is NULL on failure.
#[no_mangle]
pub unsafe extern "C" fn fennec_model_load(
    path: *const c_char,
    options: *const fennec_load_options,
    out: *mut *mut fennec_model,
) -> fennec_status {
    // SAFETY: the caller's pointers follow the ABI contract.
    unsafe {
        load_handle(path, options, out, |path, opts| {
            Ok(fennec_model {
                model: Model::load(path, opts)?,
            })
        })
    }
}

/// The load options `options` points to (defaults for NULL).
///
/// # Safety
/// `options` is NULL or points to a `fennec_load_options`.
unsafe fn load_options(options: *const fennec_load_options) -> LoadOptions {
    // SAFETY: NULL or valid (the caller's contract).
    match unsafe { options.as_ref() } {
        Some(o) => LoadOptions {
            n_threads: o.n_threads as usize,
            idle_spin: Duration::from_micros(u64::from(o.idle_spin_us)),
            ..LoadOptions::default()
        },
        None => LoadOptions::default(),
    }
}

/// The body of every `fennec_*_load(path, options, out)`: `*out` is NULL unless `load`
/// succeeds, then a new boxed handle.
///
/// # Safety
/// `path` is NULL or NUL-terminated, `options` NULL or valid, `out` NULL or writable.
pub(crate) unsafe fn load_handle<T>(
    path: *const c_char,
    options: *const fennec_load_options,
    out: *mut *mut T,
    load: impl FnOnce(&str, &LoadOptions) -> fennec_core::Result<T>,
) -> fennec_status {
    guard(|| {
        // SAFETY: `out` is NULL or writable (ABI contract); NULL is reported.
        unsafe { c_write(out, std::ptr::null_mut(), "out") }?;
        // SAFETY: `path` is NULL or a NUL-terminated string (ABI contract).
        let path = unsafe { c_str(path, "path") }?;
        // SAFETY: `options` is NULL or points to options (ABI contract).
        let opts = unsafe { load_options(options) };
        let handle = Box::into_raw(Box::new(load(path, &opts)?));
        // SAFETY: checked writable above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Releases a model handle (NULL is ignored). Sessions created from it keep the model
/// alive and stay usable.
#[no_mangle]
pub unsafe extern "C" fn fennec_model_free(model: *mut fennec_model) {
    guard_void(|| {
        if !model.is_null() {
            // SAFETY: a non-NULL handle came from Box::into_raw in fennec_model_load and is
            // freed once (ABI contract).
            drop(unsafe { Box::from_raw(model) });
        }
    })
}

/// Writes facts about `model` into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fennec_model_get_info(
    model: *const fennec_model,
    out: *mut fennec_model_info,
) -> fennec_status {
    guard(|| {
        // SAFETY: `model` is NULL or a live handle (ABI contract).
        let model = &unsafe { c_ref(model, "model") }?.model;
        let hp = model.hparams();
        let architecture = match model.architecture_name() {
            "llama" => c"llama",
            "llama4" => c"llama4",
            _ => c"unknown",
        };
        let info = fennec_model_info {
            architecture: architecture.as_ptr(),
            n_ctx_train: count(model.n_ctx_train()),
            n_vocab: count(model.n_vocab()),
            n_embd: count(model.n_embd()),
            n_layer: count(hp.n_layer),
            n_threads: count(model.n_threads()),
        };
        // SAFETY: `out` is NULL or writable (ABI contract).
        unsafe { c_write(out, info, "out") }
    })
}

/// Token ids of `text`: `add_bos` prepends BOS when the vocabulary has one, `parse_special`
/// turns control-token texts (`<|im_start|>`) into their ids.
///
/// Like `snprintf`: writes at most `capacity` ids to `tokens` (which may be NULL when
/// `capacity` is 0) and always sets `*n_tokens` to the full count; the output was cut short
/// when `*n_tokens > capacity` (call again with a larger buffer).
#[no_mangle]
pub unsafe extern "C" fn fennec_tokenize(
    model: *const fennec_model,
    text: *const c_char,
    add_bos: bool,
    parse_special: bool,
    tokens: *mut u32,
    capacity: usize,
    n_tokens: *mut usize,
) -> fennec_status {
    guard(|| {
        // SAFETY: `model` is NULL or a live handle (ABI contract).
        let model = &unsafe { c_ref(model, "model") }?.model;
        // SAFETY: `text` is NULL or a NUL-terminated string (ABI contract).
        let text = unsafe { c_str(text, "text") }?;
        if n_tokens.is_null() {
            return Err(FfiError::Null("n_tokens"));
        }
        if tokens.is_null() && capacity > 0 {
            return Err(FfiError::Null("tokens"));
        }
        let ids = model.encode(text, add_bos, parse_special)?;
        let n = ids.len().min(capacity);
        if n > 0 {
            // SAFETY: `tokens` is non-NULL and writable for `capacity >= n` ids (ABI
            // contract); `ids` is a distinct Rust allocation.
            unsafe { std::ptr::copy_nonoverlapping(ids.as_ptr(), tokens, n) };
        }
        // SAFETY: checked non-NULL above, writable (ABI contract).
        unsafe { n_tokens.write(ids.len()) };
        Ok(())
    })
}

/// The text of `n_tokens` ids (invalid UTF-8 replaced by U+FFFD).
///
/// Like `snprintf`: writes at most `capacity - 1` bytes and a terminating NUL to `buf`
/// (which may be NULL when `capacity` is 0) and always sets `*len` to the full length in
/// bytes, NUL excluded; the text was cut short (possibly inside a UTF-8 sequence) when
/// `*len >= capacity`.
#[no_mangle]
pub unsafe extern "C" fn fennec_detokenize(
    model: *const fennec_model,
    tokens: *const u32,
    n_tokens: usize,
    buf: *mut c_char,
    capacity: usize,
    len: *mut usize,
) -> fennec_status {
    guard(|| {
        // SAFETY: `model` is NULL or a live handle (ABI contract).
        let model = &unsafe { c_ref(model, "model") }?.model;
        // SAFETY: `tokens` is valid for `n_tokens` reads (ABI contract).
        let ids = unsafe { c_slice(tokens, n_tokens, "tokens") }?;
        // SAFETY: `buf` is NULL or writable for `capacity` bytes (ABI contract).
        unsafe { copy_text_out(&model.decode(ids)?, buf, capacity, len) }
    })
}

/// Copies `text` snprintf-style into `buf` (`capacity` bytes) and sets `*len`.
///
/// # Safety
/// `buf` is NULL or writable for `capacity` bytes; `len` is NULL or writable.
pub(crate) unsafe fn copy_text_out(
    text: &str,
    buf: *mut c_char,
    capacity: usize,
    len: *mut usize,
) -> crate::status::FfiResult {
    if len.is_null() {
        return Err(FfiError::Null("len"));
    }
    if capacity > 0 {
        if buf.is_null() {
            return Err(FfiError::Null("buf"));
        }
        let n = text.len().min(capacity - 1);
        // SAFETY: `buf` is writable for `capacity > n` bytes (caller's contract) and does
        // not overlap `text`, a Rust allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), buf, n);
            buf.add(n).write(0);
        }
    }
    // SAFETY: checked non-NULL; writable (caller's contract).
    unsafe { len.write(text.len()) };
    Ok(())
}
