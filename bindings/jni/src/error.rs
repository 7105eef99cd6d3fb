//! [`JniLayerError`] and the [`ThrowFennecException`] policy that turns errors and panics
//! into Java exceptions.

use std::any::Any;

use fennec_camera::CameraError;
use jni::errors::ErrorPolicy;
use jni::strings::JNIString;
use jni::{jni_str, Env};

/// JNI name of the exception thrown for refused frames and arguments (a subclass of
/// `java.lang.IllegalArgumentException`, defined in `FennecCamera.kt`).
pub const CAMERA_EXCEPTION_CLASS: &str = "dev/fennec/camera/FennecCameraException";

/// Why a native camera call failed.
#[derive(Debug, thiserror::Error)]
pub enum JniLayerError {
    /// An argument the JNI layer refused itself (null or non-direct buffer, negative size
    /// or stride, unsupported rotation).
    #[error("{0}")]
    InvalidArgument(String),
    /// The camera adapter refused the frame (a buffer too short for its size and strides,
    /// an unsupported pixel stride, a frame too large).
    #[error(transparent)]
    Camera(#[from] CameraError),
    /// A JNI call failed (or a Java exception is already pending).
    #[error("JNI call failed: {0}")]
    Jni(#[from] jni::errors::Error),
}

/// Crate result type.
pub type Result<T, E = JniLayerError> = std::result::Result<T, E>;

/// Error policy for the native methods: argument and camera errors throw
/// `dev.fennec.camera.FennecCameraException` (falling back to
/// `java.lang.IllegalArgumentException` if that class is not on the class path), JNI errors
/// and panics throw `java.lang.RuntimeException`; an exception already pending wins. The
/// native method then returns its default value (0 / `()`), which Java never sees.
#[derive(Debug, Default)]
pub struct ThrowFennecException;

impl<T: Default> ErrorPolicy<T, JniLayerError> for ThrowFennecException {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut (),
        err: JniLayerError,
    ) -> jni::errors::Result<T> {
        if env.exception_check() {
            return Ok(T::default());
        }
        let msg = JNIString::from(err.to_string());
        match err {
            JniLayerError::InvalidArgument(_) | JniLayerError::Camera(_) => {
                // `throw_new` reports `Err(JavaException)` once it has thrown, so look the
                // class up first and fall back if it is not on the class path.
                match env.find_class(JNIString::from(CAMERA_EXCEPTION_CLASS)) {
                    Ok(class) => {
                        let _ = env.throw_new(&class, &msg);
                    }
                    Err(_) => {
                        env.exception_clear();
                        let _ = env.throw_new(jni_str!("java/lang/IllegalArgumentException"), &msg);
                    }
                }
            }
            JniLayerError::Jni(_) => {
                let _ = env.throw_new(jni_str!("java/lang/RuntimeException"), &msg);
            }
        }
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut (),
        payload: Box<dyn Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        let msg = format!("Rust panic in fennec_jni: {}", panic_message(payload));
        if env.exception_check() {
            // A pending exception cannot be replaced by throwing: clear it so the panic
            // is what Java sees.
            env.exception_clear();
        }
        let _ = env.throw_new(jni_str!("java/lang/RuntimeException"), JNIString::from(msg));
        Ok(T::default())
    }
}

/// The text of a panic payload (`panic!("…")` gives `&str` or `String`).
pub fn panic_message(payload: Box<dyn Any + Send + 'static>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_string(),
            Err(payload) => {
                // Dropping an arbitrary payload may itself panic: leak it instead.
                std::mem::forget(payload);
                "(non-string panic payload)".to_string()
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_str_and_string_payloads() {
        let p = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(p), "plain");
        let n = 3;
        let p = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(p), "formatted 3");
        let p = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_message(p), "(non-string panic payload)");
    }
}
