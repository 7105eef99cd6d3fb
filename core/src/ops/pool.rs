//! The worker threads a model computes on.

use crate::error::{Error, Result};

/// A fixed set of worker threads; ops split their work into one piece per thread.
pub struct ThreadPool {
    pool: rayon::ThreadPool,
}

impl ThreadPool {
    /// A pool of `n_threads` (0 = one per available core).
    pub fn new(n_threads: usize) -> Result<Self> {
        let n = if n_threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            n_threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("fennec-{i}"))
            .build()
            .map_err(|e| Error::ThreadPool(e.to_string()))?;
        Ok(Self { pool })
    }

    /// Number of threads.
    pub fn n_threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `f(i)` for `i in 0..n` on the pool and waits for all.
    pub fn for_each(&self, n: usize, f: impl Fn(usize) + Sync) {
        if n <= 1 {
            (0..n).for_each(&f);
            return;
        }
        self.pool.scope(|s| {
            for i in 1..n {
                let f = &f;
                s.spawn(move |_| f(i));
            }
            f(0);
        });
    }

    /// Runs `f` with each item of `items` (moved to its thread) and waits for all.
    pub fn each_mut<T: Send>(&self, items: Vec<T>, f: impl Fn(T) + Sync) {
        if items.len() <= 1 {
            items.into_iter().for_each(&f);
            return;
        }
        self.pool.scope(|s| {
            let mut items = items.into_iter();
            let first = items.next();
            for item in items {
                let f = &f;
                s.spawn(move |_| f(item));
            }
            if let Some(first) = first {
                f(first);
            }
        });
    }
}
