//! Fuzzes restoring a saved session: the fuzzer's bytes (after one byte that picks the
//! model and KV type) are read by `Session::restore_into` on a small session, so no size
//! the file claims allocates; a restore must fail cleanly and leave the session empty, or
//! succeed with a context that fits and can go on (one more token evaluated).
#![no_main]

use std::sync::{Arc, OnceLock};

use fennec_core::{Input, Logits, Model, Session};
use fennec_fuzz::restore_fixture::{model, session_options, Variant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&select, stream)) = data.split_first() else {
        return;
    };
    let variant = Variant::from_byte(select);
    let mut session = Session::new(cached(variant), session_options(variant)).expect("session");
    match session.restore_into(&mut &stream[..]) {
        Ok(()) => {
            assert!(session.n_past() <= session.n_ctx());
            let _ = session.eval(&[Input::Tokens(&[1])], Logits::Last);
        }
        Err(_) => assert_eq!(
            session.n_past(),
            0,
            "a failed restore leaves the session empty"
        ),
    }
});

/// Each variant's model, built once.
fn cached(variant: Variant) -> Arc<Model> {
    static MODELS: [OnceLock<Arc<Model>>; Variant::COUNT] =
        [const { OnceLock::new() }; Variant::COUNT];
    MODELS[variant.index()]
        .get_or_init(|| model(variant))
        .clone()
}
