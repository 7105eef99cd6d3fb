//! The smart-glasses loop: a camera delivers frames continuously; every N seconds the newest
//! one is described in a sentence, and frames that arrive while the model is busy are
//! dropped, never queued (a queue would describe the past ever later).
//!
//! ```sh
//! cargo run --release -p fennec-examples --example glasses -- \
//!     --model scout.gguf --mmproj mmproj.gguf --frames DIR [--fps 15] [--every 2] [--count 5]
//! ```
//!
//! `DIR` holds JPEG/PNG files (played in name order, looping, at `--fps` as a camera would
//! deliver them) or raw NV21 frames named `*.WIDTHxHEIGHT.nv21`. Per described frame it
//! prints the latency of each stage: convert, preprocess, encode, prefill, first token,
//! total, and how many frames were dropped meanwhile.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fennec_camera::{Frame, FrameConverter};
use fennec_core::chat::ChatMessage;
use fennec_core::vision::{EmbeddingCache, Prompt, VisionModel};
use fennec_core::{
    CancelHandle, GenerateOptions, Input, LoadOptions, Model, SamplerOptions, Session,
    SessionOptions,
};

/// A delivered frame: its sequence number, bytes and file name.
type Delivered = (u64, Arc<Vec<u8>>, PathBuf);

/// The newest frame, overwritten by the camera: a one-slot mailbox.
#[derive(Default)]
struct LatestFrame {
    slot: Mutex<Option<Delivered>>,
    ready: Condvar,
    delivered: AtomicU64,
}

impl LatestFrame {
    fn put(&self, bytes: Arc<Vec<u8>>, name: PathBuf) {
        let n = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
        *self.slot.lock().expect("slot") = Some((n, bytes, name));
        self.ready.notify_one();
    }

    fn take(&self) -> Option<Delivered> {
        let mut slot = self.slot.lock().expect("slot");
        while slot.is_none() {
            let (s, timeout) = self
                .ready
                .wait_timeout(slot, Duration::from_secs(5))
                .expect("slot");
            slot = s;
            if timeout.timed_out() {
                return None;
            }
        }
        slot.take()
    }
}

struct Args {
    model: PathBuf,
    mmproj: PathBuf,
    frames: PathBuf,
    fps: f64,
    every: f64,
    count: usize,
    threads: usize,
    question: String,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        model: PathBuf::new(),
        mmproj: PathBuf::new(),
        frames: PathBuf::new(),
        fps: 15.0,
        every: 2.0,
        count: 3,
        threads: 0,
        question: "What is in front of me? One short sentence.".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" | "-m" => a.model = value()?.into(),
            "--mmproj" => a.mmproj = value()?.into(),
            "--frames" => a.frames = value()?.into(),
            "--fps" => a.fps = value()?.parse()?,
            "--every" => a.every = value()?.parse()?,
            "--count" => a.count = value()?.parse()?,
            "--threads" | "-t" => a.threads = value()?.parse()?,
            "--question" | "-p" => a.question = value()?,
            _ => bail!("unknown flag {flag}; see the example's doc comment"),
        }
    }
    if a.model.as_os_str().is_empty() || a.mmproj.as_os_str().is_empty() {
        bail!("usage: glasses --model M --mmproj P --frames DIR [--fps F] [--every S] [--count N]");
    }
    Ok(a)
}

/// Frame files of `dir` in name order.
fn frame_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.to_string_lossy().to_lowercase();
            [".jpg", ".jpeg", ".png", ".nv21"]
                .iter()
                .any(|ext| name.ends_with(ext))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} has no .jpg/.png/.nv21 frames", dir.display());
    }
    Ok(files)
}

/// A frame over `bytes`: raw NV21 when the name says `*.WxH.nv21`, else JPEG/PNG.
fn frame_of<'a>(bytes: &'a [u8], name: &Path) -> Result<Frame<'a>> {
    let text = name.to_string_lossy();
    if let Some(stem) = text.strip_suffix(".nv21") {
        let size = stem.rsplit('.').next().unwrap_or_default();
        let (w, h) = size
            .split_once('x')
            .with_context(|| format!("{text}: name raw frames NAME.WIDTHxHEIGHT.nv21"))?;
        return Ok(Frame::nv21_contiguous(bytes, w.parse()?, h.parse()?)?);
    }
    Ok(Frame::encoded(bytes))
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let model = Model::load(&args.model, &LoadOptions::with_threads(args.threads))?;
    let vision = VisionModel::load_for(&args.mmproj, &model)?;
    let mut session = Session::new(model.clone(), SessionOptions::default())?;
    let cache = EmbeddingCache::default();
    let opts = GenerateOptions::new(48, SamplerOptions::greedy());

    // The "camera": delivers frames at --fps into the one-slot mailbox until told to stop.
    let latest = Arc::new(LatestFrame::default());
    let stop = Arc::new(AtomicBool::new(false));
    let files = frame_files(&args.frames)?;
    let camera = {
        let (latest, stop) = (latest.clone(), stop.clone());
        let period = Duration::from_secs_f64(1.0 / args.fps.max(0.1));
        std::thread::spawn(move || -> Result<()> {
            for path in files.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let bytes = std::fs::read(path)?;
                latest.put(Arc::new(bytes), path.clone());
                std::thread::sleep(period);
            }
            Ok(())
        })
    };

    let mut converter = FrameConverter::new();
    let mut described = 0u64;
    let mut last_taken = 0u64;
    let every = Duration::from_secs_f64(args.every);
    let mut next = Instant::now();
    println!(
        "frame           convert  preproc   encode  prefill  1st tok    total  dropped  answer"
    );
    while (described as usize) < args.count {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next = Instant::now() + every;
        let Some((n, bytes, name)) = latest.take() else {
            bail!("the camera delivered no frame for 5 s");
        };
        // Every frame delivered since the last one we took, but this one, was dropped.
        let dropped = n - last_taken - 1;
        last_taken = n;
        let t0 = Instant::now();
        let frame = frame_of(&bytes, &name)?;
        let view = converter.convert(&frame)?;
        let t_convert = t0.elapsed();
        let pixels = vision.preprocess(&view)?;
        let t_pre = t0.elapsed();
        let cancel = CancelHandle::new();
        let image = cache.get_or_encode(&pixels, |p| vision.encode(p, &cancel))?;
        let t_enc = t0.elapsed();
        let chat = [ChatMessage::with_image(
            "user",
            image,
            args.question.as_str(),
        )];
        let prompt = Prompt::from_chat(&model, &chat, true)?;
        // Keep what the last frame's prompt shares with this one (the header; everything
        // when the frame is unchanged) and evaluate the rest.
        let inputs = prompt.inputs();
        let kept = session.reuse_prefix(&inputs)?;
        let done = session.generate(&Input::skip(&inputs, kept), &opts, &cancel, &mut |_| true)?;
        let total = t0.elapsed();
        let prefill = Duration::from_secs_f64(done.stats.prompt_seconds);
        let first = t_enc + Duration::from_secs_f64(done.stats.time_to_first_token);
        let ms = |d: Duration| format!("{:7.0}ms", d.as_secs_f64() * 1e3);
        println!(
            "{:<14} {} {} {} {} {} {} {:>7}  {}",
            name.file_name().unwrap_or_default().to_string_lossy(),
            ms(t_convert),
            ms(t_pre - t_convert),
            ms(t_enc - t_pre),
            ms(prefill),
            ms(first),
            ms(total),
            dropped,
            done.text.trim()
        );
        described += 1;
    }
    stop.store(true, Ordering::Relaxed);
    camera.join().expect("camera thread")?;
    let (hits, misses) = cache.stats();
    println!("[{described} frames described; embedding cache {hits} hits, {misses} misses]");
    Ok(())
}
