//! One-call conveniences over [`Recorder`](crate::Recorder): a matrix-vector product from
//! host to host, and the GPU's quantized activations as ggml blocks.

use crate::kernels::{self, Reduction};
use crate::{Gpu, GpuError, GpuMatrix};
use fennec_quant::GgmlType;

/// How long a read-back may wait for its mapping once the work is done (the work itself may
/// take as long as it takes: lavapipe under a loaded CI runs a prefill for tens of seconds).
const READ_BACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Gpu {
    /// `y = W x` for each of the `x.len() / n_cols` vectors in `x` (vector-major), with the
    /// device's default reduction. Returns the outputs vector-major (`n_rows` per vector).
    pub fn matvec(&self, w: &GpuMatrix, x: &[f32]) -> Result<Vec<f32>, GpuError> {
        self.matvec_with(w, x, self.default_reduction())
    }

    /// [`Gpu::matvec`] with a chosen reduction (tests run both).
    pub fn matvec_with(
        &self,
        w: &GpuMatrix,
        x: &[f32],
        reduction: Reduction,
    ) -> Result<Vec<f32>, GpuError> {
        if x.is_empty() {
            return Ok(Vec::new());
        }
        let x = self.tensor(x, w.n_cols)?;
        let mut recorder = self.recorder();
        let y = recorder.matmul_with(w, &x, reduction)?;
        recorder.read(&y)
    }

    /// Quantizes the vectors in `x` (`n_cols` each) to `act` on the GPU and returns them as
    /// ggml blocks of `act` (Q8_0, Q8_1 or Q8_K), as `fennec_quant::quantize_activations`
    /// lays them out: what the matrix-vector kernels multiply with, for tests and self-tests.
    pub fn quantize_activations(
        &self,
        act: GgmlType,
        x: &[f32],
        n_cols: usize,
    ) -> Result<Vec<u8>, GpuError> {
        let (_, floats_per_block) =
            kernels::quantize_entry(act).ok_or(GpuError::Unsupported(act))?;
        if x.is_empty() {
            return Ok(Vec::new());
        }
        let x = self.tensor(x, n_cols)?;
        let mut recorder = self.recorder();
        let q = recorder.quantize(act, &x)?;
        let n = (x.n_rows() * n_cols) as u64;
        let quants = recorder.read_bytes(&q.quants, n)?;
        let n_blocks = n as usize / act.block_len();
        let scales = self
            .recorder()
            .read_bytes(&q.scales, (n_blocks * floats_per_block as usize * 4) as u64)?;
        Ok(ggml_blocks(
            act,
            &quants,
            &bytemuck::pod_collect_to_vec(&scales),
        ))
    }

    /// Runs `encoder`, copies `size` bytes of `buffer` out and waits for them.
    pub(crate) fn read_back(
        &self,
        mut encoder: wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        size: u64,
    ) -> Result<Vec<u8>, GpuError> {
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let (sender, receiver) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            // The receiver waits below; a failed send means it is gone, nothing to tell.
            let _ = sender.send(result);
        });
        // The first poll waits for the work itself, however long it takes. The mapping's
        // callback then runs in this thread's poll or, when threads share the device, in
        // another thread's soon after: poll until it has, within a bound counted from then.
        let mut finished: Option<std::time::Instant> = None;
        let mapped = loop {
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| GpuError::Execution(e.to_string()))?;
            if let Some(error) = self.take_errors().into_iter().next() {
                return Err(GpuError::Execution(error));
            }
            let finished = *finished.get_or_insert_with(std::time::Instant::now);
            match receiver.try_recv() {
                Ok(result) => break result,
                Err(std::sync::mpsc::TryRecvError::Empty)
                    if finished.elapsed() < READ_BACK_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    return Err(GpuError::Execution("read-back never completed".into()))
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return Err(GpuError::Execution("read-back was dropped by wgpu".into()))
                }
            }
        };
        mapped.map_err(|e| GpuError::Execution(format!("read-back: {e}")))?;
        let bytes = staging
            .get_mapped_range(..)
            .map_err(|e| GpuError::Execution(format!("read-back: {e}")))?
            .to_vec();
        staging.unmap();
        Ok(bytes)
    }
}

/// The GPU's quantized activations (`quants`: one byte per element; `scales`: per block,
/// see `act_q8.wgsl`) as ggml blocks of `act`.
fn ggml_blocks(act: GgmlType, quants: &[u8], scales: &[f32]) -> Vec<u8> {
    let len = act.block_len();
    let f16 = |v: f32| half::f16::from_f32(v).to_le_bytes();
    let mut out = Vec::with_capacity(quants.len() / len * act.block_bytes());
    for (b, qs) in quants.chunks_exact(len).enumerate() {
        match act {
            GgmlType::Q8_0 => {
                out.extend(f16(scales[b]));
                out.extend(qs);
            }
            GgmlType::Q8_1 => {
                out.extend(f16(scales[2 * b]));
                out.extend(f16(scales[2 * b + 1]));
                out.extend(qs);
            }
            _ => {
                let s = &scales[17 * b..17 * b + 17];
                out.extend(s[0].to_le_bytes());
                out.extend(qs);
                for &sum in &s[1..] {
                    out.extend((sum as i16).to_le_bytes());
                }
            }
        }
    }
    out
}
