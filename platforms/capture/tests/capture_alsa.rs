//! Capture through cpal and ALSA without a sound card: ALSA's `file` plugin plays a raw file
//! as the default capture device (configured through `ALSA_CONFIG_PATH`), and the samples
//! that come out must be the file's. Its own test binary, since it sets the environment.
#![cfg(target_os = "linux")]

use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use fennec_capture::{input_devices, Capture, CaptureConfig, CaptureFormat};

#[test]
fn captures_a_raw_file_through_alsa() {
    let dir = fennec_tests::temp_dir("capture-alsa");
    // 1 s of 16 kHz mono s16le: a ramp of distinct values, so any drop or reorder shows.
    let n = 16_000;
    let want: Vec<i16> = (0..n as i64)
        .map(|i| ((i * 37) % 60_000 - 30_000) as i16)
        .collect();
    let raw = dir.join("in.raw");
    std::fs::write(
        &raw,
        want.iter()
            .flat_map(|s| s.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let alsa_config = fennec_tests::alsa_capture_from_file(&dir, &raw);
    // SAFETY of the environment: this test binary has this one test, and sets the variable
    // before anything loads ALSA.
    std::env::set_var("ALSA_CONFIG_PATH", &alsa_config);

    let devices = input_devices().unwrap();
    assert!(!devices.is_empty(), "no input devices listed");

    let config = CaptureConfig {
        sample_rate: Some(16_000),
        channels: Some(1),
        sample_format: Some(CaptureFormat::I16),
        ..CaptureConfig::default()
    };
    let (capture, rx) = Capture::start_channel(&config).unwrap();
    assert_eq!(capture.device_format().sample_rate, 16_000);
    assert_eq!(capture.sample_format(), CaptureFormat::I16);
    let mut got: Vec<f32> = Vec::new();
    while got.len() < n {
        // A guard against hanging, not a timing assertion.
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(buffer) => got.extend(buffer),
            Err(RecvTimeoutError::Timeout) => panic!("only {} of {n} samples arrived", got.len()),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    drop(capture);
    assert!(got.len() >= n, "only {} of {n} samples", got.len());
    let want: Vec<f32> = want.iter().map(|&s| f32::from(s) / 32768.0).collect();
    assert_eq!(&got[..n], &want[..]);

    // A device name that does not exist is an error, not a panic.
    let missing = CaptureConfig {
        device: Some("no such device".into()),
        ..config
    };
    assert!(Capture::start(&missing, |_| {}).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
