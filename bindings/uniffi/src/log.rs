//! Fennec's log (`tracing` events) forwarded to a foreign listener (Logcat, os_log, logging).

use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};

/// Severity of a log record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Failures.
    Error,
    /// Degraded behaviour.
    Warn,
    /// Progress (load, timings).
    Info,
    /// Details for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    fn of(level: &Level) -> Self {
        match *level {
            Level::ERROR => Self::Error,
            Level::WARN => Self::Warn,
            Level::INFO => Self::Info,
            Level::DEBUG => Self::Debug,
            _ => Self::Trace,
        }
    }
}

/// Receives Fennec's log records.
#[uniffi::export(with_foreign)]
pub trait LogListener: Send + Sync {
    /// One record: its level, its source (a Rust module path) and its message.
    fn on_log(&self, level: LogLevel, target: String, message: String);
}

struct Sink {
    listener: Arc<dyn LogListener>,
    max_level: LogLevel,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Sends Fennec's log records up to `max_level` to `listener` (replacing an earlier
/// listener; `None` stops logging). The first call installs Fennec's log subscriber for the
/// process unless the application installed a `tracing` subscriber of its own.
#[uniffi::export]
pub fn set_log_listener(listener: Option<Arc<dyn LogListener>>, max_level: LogLevel) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = listener.map(|listener| Sink {
        listener,
        max_level,
    });
    INSTALLED.get_or_init(|| tracing::subscriber::set_global_default(Forwarder).is_ok());
}

/// A minimal subscriber: no spans, events formatted and forwarded to the sink.
struct Forwarder;

impl Subscriber for Forwarder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        SINK.read()
            .ok()
            .and_then(|s| {
                s.as_ref()
                    .map(|s| LogLevel::of(metadata.level()) <= s.max_level)
            })
            .unwrap_or(false)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let Ok(sink) = SINK.read() else { return };
        if let Some(sink) = sink.as_ref() {
            let meta = event.metadata();
            sink.listener.on_log(
                LogLevel::of(meta.level()),
                meta.target().to_string(),
                message.0,
            );
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// `message` first, then `key=value` for the other fields.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push(' ');
                self.0.push_str(&rest);
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}
