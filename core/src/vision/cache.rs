//! A small cache of encoded images keyed by their pixels, so a second question about the
//! same frame does not run the encoder again.

use std::sync::{Arc, Mutex};

use super::encode::ImageEmbeddings;
use super::preprocess::PixelTensor;

/// Encoded images, least recently used evicted first, bounded in bytes. Keys are
/// [`PixelTensor::content_hash`] (plus the tensor's shape), so any frame that preprocesses to
/// the same pixels hits. Shareable between threads.
#[derive(Debug)]
pub struct EmbeddingCache {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Most recently used last.
    entries: Vec<(Key, Arc<ImageEmbeddings>)>,
    max_bytes: usize,
    hits: u64,
    misses: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    hash: u64,
    len: usize,
    grid: (usize, usize),
}

impl Key {
    fn of(pixels: &PixelTensor) -> Self {
        Key {
            hash: pixels.content_hash(),
            len: pixels.data.len(),
            grid: pixels.grid,
        }
    }
}

fn bytes_of(e: &ImageEmbeddings) -> usize {
    e.data.len() * std::mem::size_of::<f32>()
}

impl EmbeddingCache {
    /// A cache holding at most `max_bytes` of embeddings (0 disables it).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: Vec::new(),
                max_bytes,
                hits: 0,
                misses: 0,
            }),
        }
    }

    /// The embeddings of `pixels` if cached, else what `encode` returns (then cached).
    pub fn get_or_encode<E>(
        &self,
        pixels: &PixelTensor,
        encode: impl FnOnce(&PixelTensor) -> Result<ImageEmbeddings, E>,
    ) -> Result<Arc<ImageEmbeddings>, E> {
        let key = Key::of(pixels);
        if let Some(hit) = self.lookup(key) {
            return Ok(hit);
        }
        let value = Arc::new(encode(pixels)?);
        self.insert(key, value.clone());
        Ok(value)
    }

    fn lookup(&self, key: Key) -> Option<Arc<ImageEmbeddings>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.entries.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let entry = inner.entries.remove(i);
                let value = entry.1.clone();
                inner.entries.push(entry);
                inner.hits += 1;
                Some(value)
            }
            None => {
                inner.misses += 1;
                None
            }
        }
    }

    fn insert(&self, key: Key, value: Arc<ImageEmbeddings>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if bytes_of(&value) > inner.max_bytes {
            return;
        }
        inner.entries.retain(|(k, _)| *k != key);
        inner.entries.push((key, value));
        while inner
            .entries
            .iter()
            .map(|(_, v)| bytes_of(v))
            .sum::<usize>()
            > inner.max_bytes
        {
            inner.entries.remove(0);
        }
    }

    /// `(hits, misses)` since creation.
    pub fn stats(&self) -> (u64, u64) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.hits, inner.misses)
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .clear();
    }
}

impl Default for EmbeddingCache {
    /// 64 MiB: a few Scout images (a 16-tile image is 17 × 144 × 5120 floats ≈ 50 MB).
    fn default() -> Self {
        Self::new(64 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(v: f32) -> PixelTensor {
        PixelTensor {
            data: vec![v; 3 * 4],
            tile_size: 2,
            grid: (1, 1),
            has_global: false,
            resized: (2, 2),
        }
    }

    fn emb(n: usize) -> ImageEmbeddings {
        ImageEmbeddings {
            data: vec![0.0; n],
            n_embd: 1,
            tokens_per_tile: n,
            grid: (1, 1),
            has_global: false,
        }
    }

    #[test]
    fn second_lookup_hits_and_budget_evicts_oldest() {
        let cache = EmbeddingCache::new(2 * 16);
        let mut calls = 0;
        for v in [1.0, 1.0, 2.0, 3.0, 1.0] {
            cache
                .get_or_encode::<()>(&px(v), |_| {
                    calls += 1;
                    Ok(emb(4))
                })
                .unwrap();
        }
        // 1 encodes, 1 hits, 2 and 3 encode (1 evicted), 1 encodes again.
        assert_eq!(calls, 4);
        assert_eq!(cache.stats(), (1, 4));
    }
}
