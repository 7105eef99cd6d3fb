//! Forwarding `tracing` events to a C log callback.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::fennec_status;
use crate::status::{guard, FfiError};

/// Log levels for `fennec_set_log_callback()`; a message passes when its level is at most
/// `max_level`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum fennec_log_level {
    /// Nothing.
    FENNEC_LOG_OFF = 0,
    /// Errors.
    FENNEC_LOG_ERROR = 1,
    /// Warnings.
    FENNEC_LOG_WARN = 2,
    /// Progress worth knowing (model loaded, session created).
    FENNEC_LOG_INFO = 3,
    /// Details.
    FENNEC_LOG_DEBUG = 4,
    /// Everything.
    FENNEC_LOG_TRACE = 5,
}

/// Receives one log message: `level` is a `fennec_log_level`, `target` the Rust module that
/// logged (e.g. `"fennec_core::session"`), `msg` the message and its fields (`key=value`).
/// Both strings are valid only during the call. May be called from any thread, concurrently.
pub type fennec_log_callback = Option<
    unsafe extern "C" fn(
        level: c_int,
        target: *const c_char,
        msg: *const c_char,
        user: *mut c_void,
    ),
>;

struct Sink {
    callback: fennec_log_callback,
    /// The user pointer, as an address (the caller vouches that it may be used from any
    /// thread).
    user: usize,
}

static SINK: RwLock<Sink> = RwLock::new(Sink {
    callback: None,
    user: 0,
});
static MAX_LEVEL: AtomicI32 = AtomicI32::new(0);
/// Whether our subscriber became the global default (or why not).
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

fn level_number(level: &Level) -> c_int {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// The layer that forwards events to the registered callback.
struct CallbackLayer;

/// Builds `message key=value …` into a reusable string.
struct MessageVisitor<'a>(&'a mut String);

impl Visit for MessageVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let mut text = String::new();
            let _ = write!(text, "{value:?}");
            self.0.insert_str(0, &text);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

thread_local! {
    /// Message text, message C string and target C string, reused between events.
    static BUFFERS: RefCell<(String, Vec<u8>, Vec<u8>)> = const {
        RefCell::new((String::new(), Vec::new(), Vec::new()))
    };
}

fn nul_terminated(out: &mut Vec<u8>, text: &str) {
    out.clear();
    out.extend(text.bytes().map(|b| if b == 0 { b' ' } else { b }));
    out.push(0);
}

impl<S: Subscriber> Layer<S> for CallbackLayer {
    fn register_callsite(
        &self,
        _meta: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The level can change at any time: ask `enabled` for every event.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        level_number(meta.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = level_number(meta.level());
        if level > MAX_LEVEL.load(Ordering::Relaxed) {
            return;
        }
        let Ok(sink) = SINK.read() else { return };
        let Some(callback) = sink.callback else {
            return;
        };
        let _ = BUFFERS.try_with(|buffers| {
            // A callback that logs again on this thread is not forwarded (no reentrancy).
            let Ok(mut buffers) = buffers.try_borrow_mut() else {
                return;
            };
            let (text, msg, target) = &mut *buffers;
            text.clear();
            event.record(&mut MessageVisitor(text));
            nul_terminated(msg, text);
            nul_terminated(target, meta.target());
            // SAFETY: `callback` is a valid function (ABI contract of
            // fennec_set_log_callback); both strings are NUL-terminated and live until it
            // returns; `user` is passed back as given.
            unsafe {
                callback(
                    level,
                    target.as_ptr().cast(),
                    msg.as_ptr().cast(),
                    sink.user as *mut c_void,
                )
            };
        });
    }
}

/// Routes Fennec's log messages of level `max_level` (a `fennec_log_level`) and more
/// severe to `callback` with `user`; NULL or `FENNEC_LOG_OFF` turns forwarding off.
///
/// The first call installs a process-wide `tracing` subscriber; later calls only change the
/// callback, user pointer and level. Fails with `FENNEC_ERR_INTERNAL` when the process
/// already has another global `tracing` subscriber (a Rust host installed its own).
#[no_mangle]
pub unsafe extern "C" fn fennec_set_log_callback(
    callback: fennec_log_callback,
    user: *mut c_void,
    max_level: c_int,
) -> fennec_status {
    guard(|| {
        let installed = INSTALLED.get_or_init(|| {
            let subscriber = tracing_subscriber::registry().with(CallbackLayer);
            tracing::subscriber::set_global_default(subscriber).map_err(|e| e.to_string())
        });
        if let Err(e) = installed {
            return Err(FfiError::Internal(format!(
                "cannot install the log callback: another tracing subscriber is the global \
                 default ({e})"
            )));
        }
        let max = if callback.is_some() {
            max_level.clamp(0, 5)
        } else {
            0
        };
        {
            let mut sink = SINK
                .write()
                .map_err(|_| FfiError::Internal("log callback lock poisoned".into()))?;
            sink.callback = callback;
            sink.user = user as usize;
        }
        MAX_LEVEL.store(max, Ordering::Relaxed);
        tracing::callsite::rebuild_interest_cache();
        Ok(())
    })
}
