//! Scratch buffers reused between operations: a micro-batch's outputs and quantized
//! activations go back to a pool when their tensor is dropped, so decoding a token creates
//! (and frees) almost no GPU buffers.
//!
//! Reuse inside one recording is safe: the commands run in the order they were recorded and
//! wgpu orders a buffer's later write after its earlier reads. Uploads never come from the
//! pool: a queue write would land before earlier commands of the same recording run.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

/// Buffers kept per (size, usage) at most: enough for the outputs one layer has in flight.
const KEPT_PER_SIZE: usize = 32;

/// Free scratch buffers by (size, usage).
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<HashMap<(u64, u32), Vec<wgpu::Buffer>>>,
}

impl BufferPool {
    /// A buffer of `size` bytes and `usage`: a free one if the pool has it, else a new one.
    pub(crate) fn take(
        self: &Arc<Self>,
        device: &wgpu::Device,
        size: u64,
        usage: wgpu::BufferUsages,
        label: &str,
    ) -> PooledBuffer {
        let reused = self
            .free
            .lock()
            .ok()
            .and_then(|mut free| free.get_mut(&(size, usage.bits()))?.pop());
        let buffer = reused.unwrap_or_else(|| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        });
        PooledBuffer {
            buffer: Some(buffer),
            pool: Some(Arc::clone(self)),
        }
    }

    fn give_back(&self, buffer: wgpu::Buffer) {
        if let Ok(mut free) = self.free.lock() {
            let list = free
                .entry((buffer.size(), buffer.usage().bits()))
                .or_default();
            if list.len() < KEPT_PER_SIZE {
                list.push(buffer);
            }
        }
    }
}

/// A GPU buffer that returns to its pool when dropped (or an unpooled one, e.g. an upload).
pub(crate) struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    pool: Option<Arc<BufferPool>>,
}

impl PooledBuffer {
    /// A buffer that is freed, not pooled, when dropped.
    pub(crate) fn unpooled(buffer: wgpu::Buffer) -> Self {
        PooledBuffer {
            buffer: Some(buffer),
            pool: None,
        }
    }
}

impl Deref for PooledBuffer {
    type Target = wgpu::Buffer;

    fn deref(&self) -> &wgpu::Buffer {
        // Only `drop` takes the buffer out.
        self.buffer
            .as_ref()
            .unwrap_or_else(|| unreachable!("a pooled buffer is used after drop"))
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let (Some(buffer), Some(pool)) = (self.buffer.take(), &self.pool) {
            pool.give_back(buffer);
        }
    }
}
