//! Opening an adapter and a device, and the pipelines compiled on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::kernels::{self, Reduction};
use crate::{selftest, GpuError};
use fennec_quant::GgmlType;

/// Largest single buffer Fennec creates, whatever the adapter allows: Adreno drivers fail
/// allocations above 1 GiB.
const MAX_BUFFER_BYTES: u64 = 1 << 30;

/// How to open the GPU.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Use subgroup reductions where the adapter has them (otherwise shared memory).
    pub subgroups: bool,
    /// A cap on the bytes of one weight slice, below the adapter's own limits. `None` keeps
    /// the adapter's; tests set a small one to split matrices into many slices.
    pub max_slice_bytes: Option<u64>,
    /// Where the self-test's verdicts are remembered, per adapter and driver (an app's
    /// cache directory). `None`: the kernels a model needs are tested anew in each process.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Kernels to build wrong on purpose (e.g. `matvec_q4_1_shared`, `rms_norm`), for tests
    /// of the self-test and of the fall-back to the CPU. Empty in real use.
    pub inject_faults: Vec<String>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            subgroups: true,
            max_slice_bytes: None,
            cache_dir: None,
            inject_faults: Vec::new(),
        }
    }
}

/// What `fennec bench` and logs report about the adapter in use.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// The adapter's name (e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`).
    pub name: String,
    /// The driver's name.
    pub driver: String,
    /// The driver's version string.
    pub driver_info: String,
    /// `Vulkan` or `Metal`.
    pub backend: String,
    /// Integrated, discrete, virtual or CPU.
    pub device_type: String,
    /// The subgroup sizes the adapter may use, when it has subgroup operations.
    pub subgroup_sizes: Option<(u32, u32)>,
    /// The largest storage binding, in bytes.
    pub max_binding_bytes: u64,
}

/// Which bindings a pipeline's layout has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum LayoutKind {
    /// weights, quantized activations, their scales, output, parameters.
    MatvecQuantized,
    /// weights, f32 activations, output, parameters.
    MatvecF32,
    /// f32 input, quants, scales, parameters.
    Quantize,
    /// the tensor changed in place, the second operand, parameters.
    Rows,
    /// logits, indices out, parameters.
    Argmax,
    /// rows, cache, cells, parameters.
    KvStore,
    /// queries, keys, values, windows, score scratch, output, parameters.
    Attend,
}

/// A compiled pipeline and the bind group layout it was built with.
pub(crate) struct Pipeline {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
}

/// An open GPU: the device, its queue and the kernels compiled so far (only those that
/// models loaded on it have needed).
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    summary: AdapterSummary,
    subgroups: bool,
    pub(crate) max_slice_bytes: u64,
    pub(crate) max_binding_bytes: u64,
    pub(crate) max_groups: u32,
    pipelines: Mutex<HashMap<String, Arc<Pipeline>>>,
    /// Scratch buffers reused between operations.
    pub(crate) pool: Arc<crate::pool::BufferPool>,
    errors: Arc<Mutex<Vec<String>>>,
    faults: Vec<String>,
    /// Self-test verdicts by kernel name (true: passed), and the file that keeps them.
    verdicts: Mutex<HashMap<String, bool>>,
    verdict_file: Option<std::path::PathBuf>,
    /// The driver's pipeline cache and the file it is kept in.
    pipeline_cache: Option<(wgpu::PipelineCache, std::path::PathBuf)>,
}

impl Gpu {
    /// Opens the best Vulkan or Metal adapter (a high-performance one first), with the
    /// adapter's own limits rather than WebGPU's defaults.
    pub fn new(options: &GpuOptions) -> Result<Gpu, GpuError> {
        let mut instance_desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        instance_desc.backends &= wgpu::Backends::VULKAN | wgpu::Backends::METAL;
        let instance = wgpu::Instance::new(instance_desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let subgroups = options.subgroups && adapter.features().contains(wgpu::Features::SUBGROUP);
        let mut required_features = if subgroups {
            wgpu::Features::SUBGROUP
        } else {
            wgpu::Features::empty()
        };
        // A persisted pipeline cache where the platform has one (Vulkan) and the app gave a
        // directory; Metal keeps its own shader cache.
        let pipeline_cache_file = options.cache_dir.as_ref().and_then(|dir| {
            let key = wgpu::util::pipeline_cache_key(&info)?;
            adapter
                .features()
                .contains(wgpu::Features::PIPELINE_CACHE)
                .then(|| dir.join(key))
        });
        if pipeline_cache_file.is_some() {
            required_features |= wgpu::Features::PIPELINE_CACHE;
        }
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("fennec"),
            required_features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::Device {
            adapter: info.name.clone(),
            message: e.to_string(),
        })?;
        // wgpu panics on an error nobody captures; keep them instead, for `take_errors`.
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&errors);
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            tracing::warn!(%error, "uncaptured GPU error");
            if let Ok(mut errors) = sink.lock() {
                errors.push(error.to_string());
            }
        }));
        let pipeline_cache = pipeline_cache_file.map(|file| {
            let data = std::fs::read(&file).ok();
            // SAFETY: the data is what `PipelineCache::get_data` returned on an earlier run,
            // in a file named by `pipeline_cache_key` of this adapter (wgpu's condition for
            // reusing it); wgpu and the driver validate its header and ignore a stale one
            // (`fallback`).
            let cache = unsafe {
                device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                    label: Some("fennec pipelines"),
                    data: data.as_deref(),
                    fallback: true,
                })
            };
            (cache, file)
        });
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let mut max_slice_bytes = max_binding.min(MAX_BUFFER_BYTES);
        if let Some(cap) = options.max_slice_bytes {
            max_slice_bytes = max_slice_bytes.min(cap);
        }
        let summary = AdapterSummary {
            name: info.name.clone(),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            subgroup_sizes: subgroups.then_some((info.subgroup_min_size, info.subgroup_max_size)),
            max_binding_bytes: max_binding,
        };
        tracing::info!(adapter = %summary.name, driver = %summary.driver_info, subgroups, "GPU opened");
        let verdict_file = options.cache_dir.as_ref().map(|dir| {
            dir.join(format!(
                "gpu-selftest-{:016x}.txt",
                verdict_key(&summary, &info)
            ))
        });
        let verdicts = verdict_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|text| parse_verdicts(&text))
            .unwrap_or_default();
        Ok(Gpu {
            device,
            queue,
            summary,
            subgroups,
            max_slice_bytes: max_slice_bytes & !3,
            max_binding_bytes: max_binding.min(MAX_BUFFER_BYTES),
            max_groups: limits.max_compute_workgroups_per_dimension,
            pipelines: Mutex::new(HashMap::new()),
            pool: Arc::default(),
            errors,
            faults: options.inject_faults.clone(),
            verdicts: Mutex::new(verdicts),
            verdict_file,
            pipeline_cache,
        })
    }

    /// The reduction the matrix-vector kernel for `ty` runs with: the preferred one that has
    /// passed its self-test (run now if it has not run on this adapter and driver).
    pub fn verified_reduction(&self, ty: GgmlType) -> Result<Reduction, GpuError> {
        let mut last = String::new();
        for reduction in [self.default_reduction(), Reduction::Shared] {
            let name = kernels::matvec_name(ty, reduction);
            match self.verdict(&name, || selftest::check_matvec(self, ty, reduction)) {
                Ok(()) => return Ok(reduction),
                Err(e) => last = e,
            }
        }
        Err(GpuError::SelfTest {
            kernel: kernels::matvec_name(ty, Reduction::Shared),
            message: last,
        })
    }

    /// Self-tests the row operations, argmax, the KV store and attention (once per adapter
    /// and driver when verdicts are kept).
    pub fn check_row_ops(&self) -> Result<(), GpuError> {
        self.verdict("row_ops", || selftest::check_row_ops(self))
            .map_err(|message| GpuError::SelfTest {
                kernel: "row_ops".into(),
                message,
            })
    }

    /// The remembered verdict on `name`, or `test`'s (then remembered).
    fn verdict(&self, name: &str, test: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        let known = self.verdicts.lock().ok().and_then(|v| v.get(name).copied());
        match known {
            Some(true) => return Ok(()),
            Some(false) => {
                return Err(format!("{name} failed its self-test on this driver before"))
            }
            None => {}
        }
        let result = test();
        if let Err(e) = &result {
            tracing::warn!(kernel = name, error = %e, "GPU kernel failed its self-test; not used");
        }
        if let Ok(mut verdicts) = self.verdicts.lock() {
            verdicts.insert(name.to_string(), result.is_ok());
            if let Some(file) = &self.verdict_file {
                let mut lines: Vec<String> = verdicts
                    .iter()
                    .map(|(k, ok)| format!("{k} {}", if *ok { "ok" } else { "failed" }))
                    .collect();
                lines.sort();
                let written = file
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(file, lines.join("\n") + "\n"));
                if let Err(e) = written {
                    tracing::warn!(file = %file.display(), error = %e, "cannot keep GPU self-test verdicts");
                }
            }
        }
        result
    }

    /// The adapter in use.
    pub fn summary(&self) -> &AdapterSummary {
        &self.summary
    }

    /// Whether the subgroup reduction can run here.
    pub fn has_subgroups(&self) -> bool {
        self.subgroups
    }

    /// The reduction kernels use by default: subgroups where the device has them.
    pub fn default_reduction(&self) -> Reduction {
        if self.subgroups {
            Reduction::Subgroup
        } else {
            Reduction::Shared
        }
    }

    /// The largest weight slice, in bytes.
    pub fn max_slice_bytes(&self) -> u64 {
        self.max_slice_bytes
    }

    /// Errors the device reported outside any scope since the last call (validation, out of
    /// memory), oldest first.
    pub(crate) fn take_errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    /// The matrix-vector pipeline for weight type `ty` with `reduction`, compiled on first use.
    pub(crate) fn matvec_pipeline(
        &self,
        ty: GgmlType,
        reduction: Reduction,
    ) -> Result<Arc<Pipeline>, GpuError> {
        if reduction == Reduction::Subgroup && !self.subgroups {
            return Err(GpuError::Pipeline {
                kernel: kernels::matvec_name(ty, reduction),
                message: "the device has no subgroup operations".into(),
            });
        }
        let mut source = kernels::matvec_source(ty, reduction).ok_or(GpuError::Unsupported(ty))?;
        if self.faults.contains(&kernels::matvec_name(ty, reduction)) {
            source = kernels::with_fault(&source);
        }
        let kind = match kernels::activations(ty) {
            Some(kernels::Activations::F32) => LayoutKind::MatvecF32,
            _ => LayoutKind::MatvecQuantized,
        };
        self.pipeline(&kernels::matvec_name(ty, reduction), &source, "main", kind)
    }

    /// The quantizer of activations to `act` (Q8_0, Q8_1 or Q8_K), compiled on first use.
    pub(crate) fn quantize_pipeline(&self, act: GgmlType) -> Result<Arc<Pipeline>, GpuError> {
        let (entry, _) = kernels::quantize_entry(act).ok_or(GpuError::Unsupported(act))?;
        self.pipeline(
            entry,
            &kernels::quantize_source(),
            entry,
            LayoutKind::Quantize,
        )
    }

    /// The row operation `entry` of `rows.wgsl` (`rms_norm`, `rope`, `swiglu`, `add`).
    pub(crate) fn rows_pipeline(&self, entry: &str) -> Result<Arc<Pipeline>, GpuError> {
        let mut source = kernels::rows_source();
        if self.faults.iter().any(|f| f == entry) {
            source = kernels::with_fault(&source);
        }
        self.pipeline(entry, &source, entry, LayoutKind::Rows)
    }

    /// The row-wise argmax.
    pub(crate) fn argmax_pipeline(&self) -> Result<Arc<Pipeline>, GpuError> {
        self.pipeline(
            "argmax",
            &kernels::argmax_source(),
            "argmax",
            LayoutKind::Argmax,
        )
    }

    /// The f16 KV store.
    pub(crate) fn kv_store_pipeline(&self) -> Result<Arc<Pipeline>, GpuError> {
        self.pipeline(
            "kv_store",
            &kernels::kv_store_source(),
            "kv_store",
            LayoutKind::KvStore,
        )
    }

    /// Attention over the f16 KV cache.
    pub(crate) fn attend_pipeline(&self) -> Result<Arc<Pipeline>, GpuError> {
        self.pipeline(
            "attend",
            &kernels::attend_source(),
            "attend",
            LayoutKind::Attend,
        )
    }

    fn pipeline(
        &self,
        name: &str,
        source: &str,
        entry: &str,
        kind: LayoutKind,
    ) -> Result<Arc<Pipeline>, GpuError> {
        let mut cache = self
            .pipelines
            .lock()
            .map_err(|_| GpuError::Execution("pipeline cache poisoned".into()))?;
        if let Some(pipeline) = cache.get(name) {
            return Ok(Arc::clone(pipeline));
        }
        let started = std::time::Instant::now();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let layout = self.bind_group_layout(kind);
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(name),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[],
                    // Every kernel writes its workgroup memory before reading it.
                    zero_initialize_workgroup_memory: false,
                },
                cache: self.pipeline_cache.as_ref().map(|(cache, _)| cache),
            });
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Pipeline {
                kernel: name.to_string(),
                message: error.to_string(),
            });
        }
        tracing::debug!(
            kernel = name,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "pipeline built"
        );
        self.save_pipeline_cache();
        let pipeline = Arc::new(Pipeline { pipeline, layout });
        cache.insert(name.to_string(), Arc::clone(&pipeline));
        Ok(pipeline)
    }

    /// Writes the driver's pipeline cache to its file (through a temporary file, so a
    /// crash never leaves half a cache).
    fn save_pipeline_cache(&self) {
        let Some((cache, file)) = &self.pipeline_cache else {
            return;
        };
        let Some(data) = cache.get_data() else {
            return;
        };
        let temporary = file.with_extension(format!("tmp{}", std::process::id()));
        let written = file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&temporary, &data))
            .and_then(|()| std::fs::rename(&temporary, file));
        if let Err(e) = written {
            tracing::warn!(file = %file.display(), error = %e, "cannot keep the GPU pipeline cache");
        }
    }

    fn bind_group_layout(&self, kind: LayoutKind) -> wgpu::BindGroupLayout {
        use wgpu::BufferBindingType::{Storage, Uniform};
        let read = Storage { read_only: true };
        let write = Storage { read_only: false };
        let bindings: &[(u32, wgpu::BufferBindingType)] = match kind {
            LayoutKind::MatvecQuantized => {
                &[(0, read), (1, read), (2, read), (3, write), (4, Uniform)]
            }
            LayoutKind::MatvecF32 => &[(0, read), (1, read), (3, write), (4, Uniform)],
            LayoutKind::Quantize => &[(0, read), (1, write), (2, write), (3, Uniform)],
            LayoutKind::Rows => &[(0, write), (1, read), (2, Uniform)],
            LayoutKind::Argmax => &[(0, read), (1, write), (2, Uniform)],
            LayoutKind::KvStore => &[(0, read), (1, write), (2, read), (3, Uniform)],
            LayoutKind::Attend => &[
                (0, read),
                (1, read),
                (2, read),
                (3, read),
                (4, write),
                (5, write),
                (6, Uniform),
            ],
        };
        let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .iter()
            .map(|&(binding, ty)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        self.device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: None,
                entries: &entries,
            })
    }
}

/// Identifies an adapter, its driver and this kernel set: verdicts kept under another key
/// are not trusted (a driver update or a changed kernel runs the self-test again).
fn verdict_key(summary: &AdapterSummary, info: &wgpu::AdapterInfo) -> u64 {
    let mut text = format!(
        "{}|{}|{}|{}|{:x}|{:x}|{}",
        summary.name,
        summary.driver,
        summary.driver_info,
        summary.backend,
        info.vendor,
        info.device,
        env!("CARGO_PKG_VERSION")
    );
    for (_, source, _) in kernels::all_sources() {
        text.push_str(&source);
    }
    // FNV-1a: stable across runs and platforms, unlike the standard library's hasher.
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Verdict lines (`name ok` / `name failed`); anything else is ignored.
fn parse_verdicts(text: &str) -> HashMap<String, bool> {
    text.lines()
        .filter_map(|line| {
            let (name, verdict) = line.split_once(' ')?;
            match verdict {
                "ok" => Some((name.to_string(), true)),
                "failed" => Some((name.to_string(), false)),
                _ => None,
            }
        })
        .collect()
}
