//! The C ABI called from Rust as a C program would: status codes, messages, NULL and bad
//! UTF-8, cancel from another thread, save/restore, a session outliving its model, and the
//! greedy reply token for token against `Session::chat`.

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use fennec::*;
use fennec_core::chat::ChatMessage;
use fennec_core::{CancelHandle, GenerateOptions, LoadOptions, Model, SamplerOptions, Session};

const QUESTION: &str = "What is the capital of France?";

fn last_error() -> String {
    // SAFETY: fennec_last_error never returns NULL and the string lives until the next
    // failing call on this thread.
    unsafe { CStr::from_ptr(fennec_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn name(status: fennec_status) -> String {
    // SAFETY: static NUL-terminated strings.
    unsafe { CStr::from_ptr(fennec_status_name(status as u32)) }
        .to_string_lossy()
        .into_owned()
}

#[track_caller]
fn ok(status: fennec_status) {
    assert_eq!(
        status,
        fennec_status::FENNEC_OK,
        "{}: {}",
        name(status),
        last_error()
    );
}

fn model_path() -> CString {
    CString::new(fennec_tests::smollm2_path().to_str().unwrap()).unwrap()
}

/// One model handle for the tests that only borrow it (freed by no one: the process ends).
struct SharedModel(*mut fennec_model);
// SAFETY: a fennec_model is shareable between threads (Arc<Model>, Model: Send + Sync).
unsafe impl Send for SharedModel {}
// SAFETY: as above.
unsafe impl Sync for SharedModel {}

fn model() -> *const fennec_model {
    static MODEL: OnceLock<SharedModel> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let mut m = null_mut();
            let mut opts = fennec_load_options_default();
            opts.n_threads = 2;
            // SAFETY: valid path string, options and out-pointer.
            ok(unsafe { fennec_model_load(model_path().as_ptr(), &opts, &mut m) });
            SharedModel(m)
        })
        .0
}

fn new_session(model: *const fennec_model, n_ctx: u32) -> *mut fennec_session {
    let mut opts = fennec_session_options_default();
    opts.n_ctx = n_ctx;
    let mut s = null_mut();
    // SAFETY: live model, valid options and out-pointer.
    ok(unsafe { fennec_session_new(model, &opts, &mut s) });
    s
}

#[derive(Default)]
struct Collected {
    ids: Vec<u32>,
    text: String,
    cancel_after: usize,
    cancel: Option<*const fennec_cancel>,
    started: AtomicBool,
}

unsafe extern "C" fn collect(
    text: *const c_char,
    len: usize,
    token: i32,
    user: *mut c_void,
) -> bool {
    // SAFETY: the tests pass a live &mut Collected.
    let c = unsafe { &mut *user.cast::<Collected>() };
    // SAFETY: `text` is valid for `len` bytes, NUL-terminated.
    let bytes = unsafe { std::slice::from_raw_parts(text.cast::<u8>(), len) };
    // SAFETY: as above, and the NUL is there.
    assert_eq!(unsafe { *text.add(len) }, 0, "piece not NUL-terminated");
    c.text.push_str(std::str::from_utf8(bytes).unwrap());
    if token >= 0 {
        c.ids.push(token as u32);
    }
    c.started.store(true, Ordering::SeqCst);
    if c.cancel_after > 0 && c.ids.len() == c.cancel_after {
        // SAFETY: a live cancel handle.
        ok(unsafe { fennec_cancel_cancel(c.cancel.unwrap()) });
    }
    true
}

fn greedy(max_tokens: u32) -> fennec_generate_options {
    let mut o = fennec_generate_options_default();
    o.max_tokens = max_tokens;
    o.temperature = 0.0;
    o
}

fn c_chat(
    session: *mut fennec_session,
    n: u32,
    cancel: *const fennec_cancel,
    out: &mut Collected,
) -> fennec_completion {
    let role = CString::new("user").unwrap();
    let content = CString::new(QUESTION).unwrap();
    let msgs = [fennec_message {
        role: role.as_ptr(),
        content: content.as_ptr(),
    }];
    let opts = greedy(n);
    let mut done = std::mem::MaybeUninit::<fennec_completion>::uninit();
    // SAFETY: live session, one valid message, options, callback with its user pointer.
    ok(unsafe {
        fennec_session_chat(
            session,
            msgs.as_ptr(),
            1,
            &opts,
            cancel,
            Some(collect),
            (out as *mut Collected).cast(),
            done.as_mut_ptr(),
        )
    });
    // SAFETY: written on success.
    unsafe { done.assume_init() }
}

fn rust_chat(n: usize) -> Vec<u32> {
    let model = Model::load(fennec_tests::smollm2_path(), &LoadOptions::with_threads(2)).unwrap();
    let mut session = Session::new(model, fennec_core::SessionOptions::with_ctx(256)).unwrap();
    let done = session
        .chat(
            &[ChatMessage::new("user", QUESTION)],
            &GenerateOptions::new(n, SamplerOptions::greedy()),
            &CancelHandle::new(),
            &mut |_| true,
        )
        .unwrap();
    done.tokens
}

#[test]
fn greedy_chat_equals_rust() {
    let s = new_session(model(), 256);
    let mut got = Collected::default();
    let done = c_chat(s, 16, null(), &mut got);
    assert_eq!(got.ids, rust_chat(16), "C ABI and Session::chat differ");
    assert_eq!(done.generated_tokens as usize, got.ids.len());
    assert!(done.prompt_tokens > 0);
    assert!(!got.text.is_empty());
    // SAFETY: live session, freed once.
    unsafe { fennec_session_free(s) };
}

#[test]
fn errors_have_codes_and_messages() {
    let mut m = std::ptr::dangling_mut::<fennec_model>();
    let bad = CString::new("/nonexistent/x.gguf").unwrap();
    // SAFETY: valid arguments.
    let st = unsafe { fennec_model_load(bad.as_ptr(), null(), &mut m) };
    assert_eq!(st, fennec_status::FENNEC_ERR_IO);
    assert!(m.is_null());
    assert!(
        last_error().contains("/nonexistent/x.gguf"),
        "{}",
        last_error()
    );

    let garbage = std::env::temp_dir().join(format!("fennec-c-garbage-{}", std::process::id()));
    std::fs::write(&garbage, b"GGUF\x03\0\0\0garbage").unwrap();
    let g = CString::new(garbage.to_str().unwrap()).unwrap();
    // SAFETY: valid arguments.
    let st = unsafe { fennec_model_load(g.as_ptr(), null(), &mut m) };
    std::fs::remove_file(&garbage).unwrap();
    assert_eq!(
        st,
        fennec_status::FENNEC_ERR_INVALID_GGUF,
        "{}",
        last_error()
    );
    assert!(!last_error().is_empty());

    // SAFETY: NULL arguments are checked.
    let st = unsafe { fennec_model_load(null(), null(), &mut m) };
    assert_eq!(st, fennec_status::FENNEC_ERR_NULL_ARGUMENT);
    assert_eq!(last_error(), "path is NULL");
    // SAFETY: as above.
    let st = unsafe { fennec_model_load(bad.as_ptr(), null(), null_mut()) };
    assert_eq!(st, fennec_status::FENNEC_ERR_NULL_ARGUMENT);

    let invalid = [0xffu8, 0xfe, 0];
    // SAFETY: a NUL-terminated (non-UTF-8) string.
    let st = unsafe { fennec_model_load(invalid.as_ptr().cast(), null(), &mut m) };
    assert_eq!(st, fennec_status::FENNEC_ERR_INVALID_UTF8);
    assert!(last_error().contains("UTF-8"));

    assert_eq!(name(fennec_status::FENNEC_ERR_CONTEXT_FULL), "context_full");
    // SAFETY: static strings.
    assert_eq!(
        unsafe { CStr::from_ptr(fennec_status_name(9999)) }
            .to_str()
            .unwrap(),
        "unknown"
    );
    // SAFETY: as above.
    let v = unsafe { CStr::from_ptr(fennec_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));

    // Freeing NULL is fine.
    // SAFETY: NULL is accepted.
    unsafe {
        fennec_model_free(null_mut());
        fennec_session_free(null_mut());
        fennec_cancel_free(null_mut());
        fennec_buffer_free(null_mut(), 0);
    }
}

#[test]
fn null_and_bad_arguments_on_a_session() {
    let s = new_session(model(), 64);
    let opts = greedy(2);
    // SAFETY: NULL session is checked.
    let st = unsafe {
        fennec_session_chat(
            null_mut(),
            null(),
            0,
            &opts,
            null(),
            None,
            null_mut(),
            null_mut(),
        )
    };
    assert_eq!(st, fennec_status::FENNEC_ERR_NULL_ARGUMENT);
    // SAFETY: NULL messages with a count is checked.
    let st =
        unsafe { fennec_session_chat(s, null(), 1, &opts, null(), None, null_mut(), null_mut()) };
    assert_eq!(st, fennec_status::FENNEC_ERR_NULL_ARGUMENT);
    let role = CString::new("user").unwrap();
    let msgs = [fennec_message {
        role: role.as_ptr(),
        content: null(),
    }];
    // SAFETY: a NULL field is checked.
    let st = unsafe {
        fennec_session_chat(
            s,
            msgs.as_ptr(),
            1,
            &opts,
            null(),
            None,
            null_mut(),
            null_mut(),
        )
    };
    assert_eq!(st, fennec_status::FENNEC_ERR_NULL_ARGUMENT);
    assert_eq!(last_error(), "messages[i].content is NULL");
    // An out-of-vocabulary token and an empty prompt are core errors.
    let ids = [u32::MAX - 1];
    // SAFETY: valid slice.
    let st = unsafe {
        fennec_session_generate_tokens(
            s,
            ids.as_ptr(),
            1,
            &opts,
            null(),
            None,
            null_mut(),
            null_mut(),
        )
    };
    assert_eq!(
        st,
        fennec_status::FENNEC_ERR_INVALID_TOKEN,
        "{}",
        last_error()
    );
    // SAFETY: empty slice.
    let st = unsafe {
        fennec_session_generate_tokens(s, null(), 0, &opts, null(), None, null_mut(), null_mut())
    };
    assert_eq!(
        st,
        fennec_status::FENNEC_ERR_INVALID_ARGUMENT,
        "{}",
        last_error()
    );
    // A bad kv_type is refused.
    let mut so = fennec_session_options_default();
    so.kv_type = 77;
    let mut out = null_mut();
    // SAFETY: valid pointers.
    let st = unsafe { fennec_session_new(model(), &so, &mut out) };
    assert_eq!(st, fennec_status::FENNEC_ERR_INVALID_ARGUMENT);
    assert!(out.is_null());
    // Context full: a prompt longer than the context.
    let long = CString::new("word ".repeat(200)).unwrap();
    // SAFETY: valid pointers.
    let st = unsafe {
        fennec_session_generate(
            s,
            long.as_ptr(),
            &opts,
            null(),
            None,
            null_mut(),
            null_mut(),
        )
    };
    assert_eq!(
        st,
        fennec_status::FENNEC_ERR_CONTEXT_FULL,
        "{}",
        last_error()
    );
    // Tokenize with a too-small buffer reports the full count.
    let hello = CString::new("Hello, fennec!").unwrap();
    let mut n = 0usize;
    let mut buf = [0u32; 2];
    // SAFETY: buffer of 2.
    ok(unsafe {
        fennec_tokenize(
            model(),
            hello.as_ptr(),
            false,
            false,
            buf.as_mut_ptr(),
            2,
            &mut n,
        )
    });
    assert!(n > 2);
    // SAFETY: live session, freed once.
    unsafe { fennec_session_free(s) };
}

#[test]
fn cancel_from_another_thread() {
    let s = new_session(model(), 512);
    let mut cancel = null_mut();
    // SAFETY: valid out-pointer.
    ok(unsafe { fennec_cancel_new(&mut cancel) });
    let mut got = Collected::default();
    let started: *const AtomicBool = &got.started;
    let (c_addr, s_addr) = (cancel as usize, started as usize);
    let canceller = std::thread::spawn(move || {
        // SAFETY: `started` lives until the generation returns, which is after this thread
        // has seen it true (generation only stops once it cancels).
        let started = unsafe { &*(s_addr as *const AtomicBool) };
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // SAFETY: a live cancel handle, usable from any thread.
        ok(unsafe { fennec_cancel_cancel(c_addr as *const fennec_cancel) });
    });
    let done = c_chat(s, 400, cancel, &mut got);
    canceller.join().unwrap();
    assert_eq!(done.stop, fennec_stop_reason::FENNEC_STOP_CANCELLED);
    assert!(done.generated_tokens < 400);
    // SAFETY: live handles, freed once.
    unsafe {
        assert!(fennec_cancel_is_cancelled(cancel));
        ok(fennec_cancel_reset(cancel));
        assert!(!fennec_cancel_is_cancelled(cancel));
        fennec_cancel_free(cancel);
        fennec_session_free(s);
    }
}

#[test]
fn save_and_restore_roundtrip() {
    let s = new_session(model(), 256);
    let mut first = Collected::default();
    c_chat(s, 4, null(), &mut first);
    let (mut data, mut len) = (null_mut(), 0usize);
    // SAFETY: valid out-pointers.
    ok(unsafe { fennec_session_save_buffer(s, &mut data, &mut len) });
    let mut restored = null_mut();
    // SAFETY: `data` holds `len` bytes.
    ok(unsafe { fennec_session_restore_buffer(model(), data, len, &mut restored) });
    // Damaged bytes are refused.
    // SAFETY: we own the buffer; flip one byte in the middle.
    unsafe { *data.add(len / 2) ^= 0x55 };
    let mut bad = null_mut();
    // SAFETY: as above.
    let st = unsafe { fennec_session_restore_buffer(model(), data, len, &mut bad) };
    assert_eq!(
        st,
        fennec_status::FENNEC_ERR_CORRUPT_SESSION,
        "{}",
        last_error()
    );
    // SAFETY: returned by save_buffer with this length.
    unsafe { fennec_buffer_free(data, len) };

    let path = std::env::temp_dir().join(format!("fennec-c-{}.fnss", std::process::id()));
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: valid pointers.
    ok(unsafe { fennec_session_save_file(s, cpath.as_ptr()) });
    let mut from_file = null_mut();
    // SAFETY: valid pointers.
    ok(unsafe { fennec_session_restore_file(model(), cpath.as_ptr(), &mut from_file) });
    std::fs::remove_file(&path).unwrap();

    let mut infos = Vec::new();
    for h in [s, restored, from_file] {
        let mut info = fennec_session_info {
            n_ctx: 0,
            n_past: 0,
            kv_bytes: 0,
        };
        // SAFETY: live handle.
        ok(unsafe { fennec_session_get_info(h, &mut info) });
        infos.push((info.n_ctx, info.n_past));
    }
    assert!(infos[0].1 > 0);
    assert!(infos.iter().all(|i| *i == infos[0]), "{infos:?}");
    // All three continue the same way.
    let next = CString::new(" And Germany?").unwrap();
    let opts = greedy(4);
    let mut outs = Vec::new();
    for h in [s, restored, from_file] {
        let mut c = Collected::default();
        // SAFETY: live handle, valid prompt and callback.
        ok(unsafe {
            fennec_session_generate(
                h,
                next.as_ptr(),
                &opts,
                null(),
                Some(collect),
                (&mut c as *mut Collected).cast(),
                null_mut(),
            )
        });
        outs.push(c.ids);
        // SAFETY: freed once.
        unsafe { fennec_session_free(h) };
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[0], outs[2]);
}

#[test]
fn session_outlives_its_model() {
    let mut m = null_mut();
    let mut lo = fennec_load_options_default();
    lo.n_threads = 1;
    // SAFETY: valid arguments.
    ok(unsafe { fennec_model_load(model_path().as_ptr(), &lo, &mut m) });
    let s = new_session(m, 128);
    // SAFETY: freed once; the session holds its own reference.
    unsafe { fennec_model_free(m) };
    let mut got = Collected::default();
    let done = c_chat(s, 3, null(), &mut got);
    assert_eq!(done.generated_tokens, 3);
    // SAFETY: freed once.
    unsafe { fennec_session_free(s) };
}

static LOGS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_logs(
    level: std::ffi::c_int,
    target: *const c_char,
    msg: *const c_char,
    user: *mut c_void,
) {
    assert_eq!(user as usize, 42);
    assert!((1..=3).contains(&level));
    // SAFETY: NUL-terminated strings valid during the call.
    let (target, msg) = unsafe { (CStr::from_ptr(target), CStr::from_ptr(msg)) };
    assert!(target.to_str().unwrap().starts_with("fennec"));
    assert!(!msg.to_bytes().is_empty());
    LOGS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn log_callback_forwards_and_installs_twice() {
    // SAFETY: a valid callback; the user pointer is only compared.
    ok(unsafe { fennec_set_log_callback(Some(count_logs), 42 as *mut c_void, 3) });
    // SAFETY: as above.
    ok(unsafe { fennec_set_log_callback(Some(count_logs), 42 as *mut c_void, 3) });
    let before = LOGS.load(Ordering::SeqCst);
    let s = new_session(model(), 64); // logs "session created" at info
    assert!(LOGS.load(Ordering::SeqCst) > before, "no log forwarded");
    // Off: nothing more.
    // SAFETY: NULL turns forwarding off.
    ok(unsafe { fennec_set_log_callback(None, null_mut(), 0) });
    let before = LOGS.load(Ordering::SeqCst);
    let s2 = new_session(model(), 64);
    assert_eq!(LOGS.load(Ordering::SeqCst), before);
    // SAFETY: freed once.
    unsafe {
        fennec_session_free(s);
        fennec_session_free(s2);
    }
}

#[test]
fn concurrent_use_of_one_session_is_busy_not_ub() {
    // A callback that calls back into its own session gets FENNEC_ERR_BUSY.
    struct Reenter {
        session: *mut fennec_session,
        status: Option<fennec_status>,
    }
    unsafe extern "C" fn reenter(_: *const c_char, _: usize, _: i32, user: *mut c_void) -> bool {
        // SAFETY: the test passes a live Reenter.
        let r = unsafe { &mut *user.cast::<Reenter>() };
        // SAFETY: a live session (locked by the running call).
        r.status = Some(unsafe { fennec_session_reset(r.session) });
        false
    }
    let s = new_session(model(), 128);
    let mut r = Reenter {
        session: s,
        status: None,
    };
    let prompt = CString::new("Hello").unwrap();
    let opts = greedy(4);
    let mut done = std::mem::MaybeUninit::<fennec_completion>::uninit();
    // SAFETY: valid pointers.
    ok(unsafe {
        fennec_session_generate(
            s,
            prompt.as_ptr(),
            &opts,
            null(),
            Some(reenter),
            (&mut r as *mut Reenter).cast(),
            done.as_mut_ptr(),
        )
    });
    assert_eq!(r.status, Some(fennec_status::FENNEC_ERR_BUSY));
    // SAFETY: written on success.
    assert_eq!(
        unsafe { done.assume_init() }.stop,
        fennec_stop_reason::FENNEC_STOP_CALLBACK
    );
    // SAFETY: freed once.
    unsafe { fennec_session_free(s) };
}
