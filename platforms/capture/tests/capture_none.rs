//! With the machine's own ALSA setup (no sound card in CI): listing works or fails cleanly,
//! and opening capture is an error, never a panic.

use fennec_audio::AudioError;
use fennec_capture::{input_devices, Capture, CaptureConfig};

#[test]
fn no_device_is_an_error_not_a_panic() {
    // Whatever the machine has, these must return.
    let listed = input_devices();
    let opened = Capture::start(&CaptureConfig::default(), |_| {});
    let missing = Capture::start(
        &CaptureConfig {
            device: Some("no such device".into()),
            ..CaptureConfig::default()
        },
        |_| {},
    );
    assert!(matches!(missing, Err(AudioError::Device(_))));
    // On a machine without a card (this CI), the default device cannot be opened.
    if std::env::var_os("FENNEC_EXPECT_NO_AUDIO_DEVICE").is_some() {
        assert!(opened.is_err(), "opened {:?}", listed);
    }
}
