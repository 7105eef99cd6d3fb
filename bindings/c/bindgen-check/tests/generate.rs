//! A real generation through the bindgen declarations only.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::PathBuf;
use std::ptr::{null, null_mut};

use fennec_c_bindgen_check::*;

unsafe extern "C" fn collect(_: *const c_char, _: usize, token: i32, user: *mut c_void) -> bool {
    // SAFETY: the test passes a live Vec<i32>.
    let ids = unsafe { &mut *user.cast::<Vec<i32>>() };
    if token >= 0 {
        ids.push(token);
    }
    true
}

/// The SmolLM2 file: `$FENNEC_SMOLLM2`, else where `scripts/fetch-models.sh` puts it.
fn smollm2_path() -> PathBuf {
    let path = match std::env::var_os("FENNEC_SMOLLM2") {
        Some(p) => PathBuf::from(p),
        None => {
            let models = std::env::var_os("FENNEC_MODELS")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/fennec/models")
                });
            models.join("SmolLM2-135M-Instruct.Q4_1.gguf")
        }
    };
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models.sh",
        path.display()
    );
    path
}

#[test]
fn generates_through_the_header() {
    let path = CString::new(smollm2_path().to_str().unwrap()).unwrap();
    // SAFETY: every call follows the header's contract: valid strings, options and
    // out-pointers, handles freed once.
    unsafe {
        let mut lo = fennec_load_options_default();
        lo.n_threads = 2;
        let mut model = null_mut();
        assert_eq!(fennec_model_load(path.as_ptr(), &lo, &mut model), FENNEC_OK);
        let mut so = fennec_session_options_default();
        so.n_ctx = 256;
        let mut session = null_mut();
        assert_eq!(fennec_session_new(model, &so, &mut session), FENNEC_OK);
        let role = CString::new("user").unwrap();
        let content = CString::new("What is the capital of France?").unwrap();
        let msg = fennec_message {
            role: role.as_ptr(),
            content: content.as_ptr(),
        };
        let mut go = fennec_generate_options_default();
        go.max_tokens = 8;
        go.temperature = 0.0;
        let mut ids: Vec<i32> = Vec::new();
        let mut done: fennec_completion = std::mem::zeroed();
        let st = fennec_session_chat(
            session,
            &msg,
            1,
            &go,
            null(),
            Some(collect),
            (&mut ids as *mut Vec<i32>).cast(),
            &mut done,
        );
        assert_eq!(st, FENNEC_OK, "{:?}", CStr::from_ptr(fennec_last_error()));
        assert_eq!(done.generated_tokens, 8);
        assert_eq!(ids.len(), 8);
        assert_eq!(done.stop, FENNEC_STOP_LENGTH);
        let bad = CString::new("/nonexistent.gguf").unwrap();
        let mut m2 = null_mut();
        assert_eq!(
            fennec_model_load(bad.as_ptr(), null(), &mut m2),
            FENNEC_ERR_IO
        );
        fennec_session_free(session);
        fennec_model_free(model);
    }
}
