//! `--backend cpu|gpu|auto`: where a model runs.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use fennec_core::{Input, LoadOptions, Logits, Model, Session, SessionOptions};
use fennec_gpu::{GpuOptions, WgpuBackend};

/// Where to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// Fennec's CPU kernels.
    Cpu,
    /// The GPU through wgpu (Vulkan, Metal); an error when there is none.
    Gpu,
    /// The GPU only where a short calibration on this model measures it faster than the
    /// CPU; otherwise (or with no usable GPU) the CPU.
    Auto,
}

/// The `--backend` flag.
#[derive(clap::Args, Clone, Debug)]
pub struct BackendArgs {
    /// Where the model runs: cpu, gpu or auto.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
}

/// Opens the GPU, with the self-test's verdicts kept in the user's cache directory.
fn open_gpu() -> Result<Arc<WgpuBackend>> {
    let cache_dir = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))
        .map(|d| d.join("fennec"));
    let started = Instant::now();
    let backend = WgpuBackend::new(&GpuOptions {
        cache_dir,
        ..GpuOptions::default()
    })
    .context("cannot use the GPU")?;
    tracing::info!(
        gpu = %fennec_core::backend::Backend::describe(&backend),
        ms = started.elapsed().as_secs_f64() * 1e3,
        "GPU ready"
    );
    Ok(Arc::new(backend))
}

impl BackendArgs {
    /// Loads `path` with `opts` on the chosen backend.
    pub fn load(&self, path: &std::path::Path, opts: LoadOptions) -> Result<Arc<Model>> {
        let load = |opts: &LoadOptions| {
            Model::load(path, opts).with_context(|| format!("cannot load {}", path.display()))
        };
        match self.backend {
            BackendChoice::Cpu => load(&opts),
            BackendChoice::Gpu => {
                let model = load(&LoadOptions {
                    backend: Some(open_gpu()?),
                    ..opts
                })?;
                if model.backend().is_none() {
                    tracing::warn!("the GPU cannot run this model; it runs on the CPU");
                }
                Ok(model)
            }
            BackendChoice::Auto => {
                let cpu = load(&opts)?;
                let gpu = match open_gpu() {
                    Ok(backend) => load(&LoadOptions {
                        backend: Some(backend),
                        ..opts.clone()
                    })?,
                    Err(e) => {
                        tracing::info!("no GPU ({e:#}); running on the CPU");
                        return Ok(cpu);
                    }
                };
                if gpu.backend().is_none() {
                    return Ok(cpu);
                }
                let (cpu_s, gpu_s) = (calibrate(&cpu)?, calibrate(&gpu)?);
                let pick_gpu = gpu_s < cpu_s;
                tracing::info!(
                    cpu_ms = cpu_s * 1e3,
                    gpu_ms = gpu_s * 1e3,
                    chosen = if pick_gpu { "gpu" } else { "cpu" },
                    "calibration: one 32-token prompt and 8 decoded tokens"
                );
                Ok(if pick_gpu { gpu } else { cpu })
            }
        }
    }
}

/// Seconds for a 32-token prompt and 8 single-token steps (after one warm-up step, which
/// also uploads the weights to a GPU).
fn calibrate(model: &Arc<Model>) -> Result<f64> {
    let opts = SessionOptions {
        n_ctx: 64,
        ..SessionOptions::default()
    };
    let mut session = Session::new(model.clone(), opts)?;
    let tokens: Vec<u32> = (0..41)
        .map(|i| (i * 7 + 3) % model.n_vocab() as u32)
        .collect();
    session.eval(&[Input::Tokens(&tokens[..1])], Logits::Last)?;
    session.clear();
    let started = Instant::now();
    session.eval(&[Input::Tokens(&tokens[..32])], Logits::Last)?;
    for t in &tokens[32..40] {
        session.eval(&[Input::Tokens(std::slice::from_ref(t))], Logits::Last)?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// How `fennec bench` names the backend a model runs on.
pub fn describe(model: &Model) -> String {
    model
        .backend()
        .map_or_else(|| "cpu".to_string(), |b| b.describe())
}
