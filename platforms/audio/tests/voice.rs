//! The push API: any format in, utterances out.

mod common;

use common::{clip, odd_chunks};
use fennec_audio::{AudioError, VadConfig, VoiceInput};

fn wav_i16(name: &str) -> (Vec<i16>, u32, u16) {
    let mut r = hound::WavReader::open(clip(name)).unwrap();
    let spec = r.spec();
    let x = r.samples::<i16>().map(|s| s.unwrap()).collect();
    (x, spec.sample_rate, spec.channels)
}

/// The same sentence at 16 kHz mono, 44.1 kHz mono and 48 kHz stereo, pushed in odd chunk
/// sizes: one utterance each, at the same times (within 2 VAD frames).
#[test]
fn any_format_gives_the_same_utterance() {
    let mut spans = Vec::new();
    for name in ["short_16k.wav", "short_44k.wav", "short_48k_stereo.wav"] {
        let (x, rate, channels) = wav_i16(name);
        let mut voice = VoiceInput::new(VadConfig::default()).unwrap();
        let frames: Vec<usize> = (0..x.len() / usize::from(channels)).collect();
        let ch = usize::from(channels);
        for chunk in odd_chunks(&frames) {
            voice
                .push_pcm(
                    &x[chunk[0] * ch..(chunk[chunk.len() - 1] + 1) * ch],
                    rate,
                    channels,
                )
                .unwrap();
        }
        voice.finish().unwrap();
        let u: Vec<_> = voice.utterances().collect();
        assert_eq!(u.len(), 1, "{name}: {u:?}");
        assert_eq!(
            u[0].samples.len() as u64,
            u[0].end_sample - u[0].start_sample
        );
        spans.push((u[0].start_sample as i64, u[0].end_sample as i64));
    }
    for s in &spans[1..] {
        assert!(
            (s.0 - spans[0].0).abs() <= 512 && (s.1 - spans[0].1).abs() <= 512,
            "{spans:?}"
        );
    }
}

#[test]
fn two_sentences_arrive_one_by_one() {
    let (x, rate, channels) = wav_i16("two_sentences.wav");
    let mut voice = VoiceInput::new(VadConfig::default()).unwrap();
    let mut seen = Vec::new();
    for chunk in x.chunks(320) {
        voice.push_pcm(chunk, rate, channels).unwrap();
        while let Some(u) = voice.next_utterance() {
            seen.push(u);
        }
    }
    // The second ends only at the end of the stream (0.3 s of padding < the hangover).
    assert_eq!(seen.len(), 1);
    voice.finish().unwrap();
    seen.extend(voice.utterances());
    assert_eq!(seen.len(), 2);
    assert!(seen[0].end_sample < seen[1].start_sample);
}

#[test]
fn cancel_and_reset() {
    let (x, rate, channels) = wav_i16("speech_us.wav");
    let mut voice = VoiceInput::new(VadConfig::default()).unwrap();
    voice.push_pcm(&x[..x.len() / 2], rate, channels).unwrap();
    assert!(voice.in_speech());
    voice.cancel();
    assert!(!voice.in_speech());
    voice.finish().unwrap();
    assert_eq!(voice.utterances().count(), 0);
    // Reset: the clock restarts, so the same clip gives the same times as a fresh input.
    voice.push_pcm(&x, rate, channels).unwrap();
    voice.reset();
    voice.push_pcm(&x, rate, channels).unwrap();
    voice.finish().unwrap();
    let a: Vec<_> = voice.utterances().collect();
    let mut fresh = VoiceInput::new(VadConfig::default()).unwrap();
    fresh.push_pcm(&x, rate, channels).unwrap();
    fresh.finish().unwrap();
    let b: Vec<_> = fresh.utterances().collect();
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
}

#[test]
fn format_changes_and_bad_input() {
    let mut voice = VoiceInput::new(VadConfig::default()).unwrap();
    voice.push_pcm(&[0.0f32; 960], 48_000, 2).unwrap();
    voice.push_pcm(&[0i16; 441], 44_100, 1).unwrap();
    voice.push_16k_mono(&[0.0; 160]).unwrap();
    assert!(matches!(
        voice.push_pcm(&[0i16; 3], 48_000, 2),
        Err(AudioError::PartialFrame { .. })
    ));
    assert!(matches!(
        voice.push_pcm(&[0i16; 4], 0, 2),
        Err(AudioError::ZeroSampleRate)
    ));
    assert!(matches!(
        voice.push_pcm(&[0i16; 4], 16_000, 0),
        Err(AudioError::ZeroChannels)
    ));
    voice.finish().unwrap();
    assert_eq!(voice.utterances().count(), 0);
    assert!(matches!(
        VoiceInput::new(VadConfig {
            threshold: 2.0,
            ..VadConfig::default()
        }),
        Err(AudioError::InvalidConfig(_))
    ));
}
