//! The worker threads a model computes on: a persistent pool whose idle workers spin
//! briefly before sleeping, so the ~250 small parallel ops of one decoded token start in
//! well under a microsecond instead of waking sleeping threads each time.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long an idle worker yields (after spinning) before it sleeps.
const YIELD: Duration = Duration::from_millis(2);
/// Spins between two looks at the clock while idle.
const CLOCK_EVERY: u32 = 64;

/// A job as the workers see it: a type- and lifetime-erased `&dyn Fn(usize)` plus a count.
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync + 'static),
    n: usize,
}

// SAFETY: `f` points to a `Sync` closure that outlives the job (see `ThreadPool::for_each`).
unsafe impl Send for Job {}

struct Shared {
    /// The current job and its epoch.
    job: Mutex<(u64, Option<Job>)>,
    /// Bumped for every job; workers watch it.
    epoch: AtomicU64,
    /// Epoch in the high 32 bits, next task index in the low 32 bits.
    cursor: AtomicU64,
    /// Tasks finished in the current job.
    done: AtomicUsize,
    /// A task panicked in the current job.
    panicked: AtomicBool,
    /// The payload of the first panic, rethrown on the calling thread.
    panic_payload: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// Workers sleeping on `wake`.
    sleepers: AtomicUsize,
    sleep_lock: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
}

impl Shared {
    /// Runs tasks of job `epoch` until none are left.
    fn work(&self, epoch: u64, job: Job) {
        loop {
            let cur = self.cursor.load(Ordering::Acquire);
            let index = (cur & 0xffff_ffff) as usize;
            if cur >> 32 != epoch & 0xffff_ffff || index >= job.n {
                return;
            }
            if self
                .cursor
                .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // SAFETY: the task index was claimed for this epoch, so the job is not finished
            // and its caller is still inside `for_each`, keeping the closure alive.
            let f = unsafe { &*job.f };
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(index))) {
                self.panicked.store(true, Ordering::Relaxed);
                self.panic_payload
                    .lock()
                    .expect("panic slot")
                    .get_or_insert(payload);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// A fixed set of worker threads; ops split their work into one piece per thread.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serializes jobs from sessions that share the model.
    dispatch: Mutex<()>,
}

impl ThreadPool {
    /// A pool of `n_threads` including the calling thread (0 = one per available core)
    /// whose idle workers spin for `idle_spin` before they yield and then sleep.
    pub fn new(n_threads: usize, idle_spin: Duration) -> Result<Self> {
        let n = if n_threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            n_threads
        };
        let shared = Arc::new(Shared {
            job: Mutex::new((0, None)),
            epoch: AtomicU64::new(0),
            cursor: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            panic_payload: Mutex::new(None),
            sleepers: AtomicUsize::new(0),
            sleep_lock: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
        });
        let workers = (1..n)
            .map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("fennec-{i}"))
                    .spawn(move || worker_loop(&shared, idle_spin))
                    .map_err(|e| Error::ThreadPool(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            shared,
            workers,
            dispatch: Mutex::new(()),
        })
    }

    /// Number of threads (workers plus the caller).
    pub fn n_threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(i)` for `i in 0..n` on the pool (the caller takes part) and waits for all.
    /// A panic in any task is re-raised here after every task has finished.
    pub fn for_each(&self, n: usize, f: impl Fn(usize) + Sync) {
        if n <= 1 || self.workers.is_empty() {
            (0..n).for_each(&f);
            return;
        }
        let _serial = self.dispatch.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        let local: &(dyn Fn(usize) + Sync) = &f;
        // SAFETY: the lifetime is erased only for the duration of this call: workers use the
        // pointer only for task indices claimed in this epoch, and this function does not
        // return before all `n` of them have finished (`done == n`), after which no index of
        // this epoch can be claimed any more.
        let erased: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(local) };
        let job = Job { f: erased, n };
        let epoch = s.epoch.load(Ordering::Relaxed) + 1;
        s.done.store(0, Ordering::Relaxed);
        s.panicked.store(false, Ordering::Relaxed);
        *s.job.lock().expect("job slot") = (epoch, Some(job));
        s.cursor
            .store((epoch & 0xffff_ffff) << 32, Ordering::Release);
        s.epoch.store(epoch, Ordering::Release);
        if s.sleepers.load(Ordering::Acquire) > 0 {
            let _g = s.sleep_lock.lock().expect("sleep lock");
            s.wake.notify_all();
        }
        s.work(epoch, job);
        while s.done.load(Ordering::Acquire) < n {
            std::hint::spin_loop();
        }
        s.job.lock().expect("job slot").1 = None;
        if s.panicked.load(Ordering::Relaxed) {
            if let Some(payload) = s.panic_payload.lock().expect("panic slot").take() {
                resume_unwind(payload);
            }
        }
    }

    /// Splits `x` (rows of `row_len`) into about two runs of whole rows per thread and
    /// calls `f(rows, first_row_index)` on each, in parallel. Few rows run on the caller.
    pub fn for_rows(&self, x: &mut [f32], row_len: usize, f: impl Fn(&mut [f32], usize) + Sync) {
        let n_rows = x.len() / row_len.max(1);
        let n_chunks = (self.n_threads() * 2)
            .min(n_rows / MIN_ROWS_PER_CHUNK)
            .max(1);
        if n_chunks == 1 {
            f(x, 0);
            return;
        }
        let per_chunk = n_rows.div_ceil(n_chunks);
        let chunks: Vec<(usize, &mut [f32])> = x
            .chunks_mut(per_chunk * row_len)
            .enumerate()
            .map(|(i, c)| (i * per_chunk, c))
            .collect();
        self.each_mut(chunks, |(first, rows)| f(rows, first));
    }

    /// Runs `f` on each item of `items` (each moved to the thread that takes it) and waits.
    pub fn each_mut<T: Send>(&self, items: Vec<T>, f: impl Fn(T) + Sync) {
        let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
        self.for_each(slots.len(), |i| {
            if let Some(item) = slots[i].lock().expect("item slot").take() {
                f(item);
            }
        });
    }
}

/// Rows below which splitting an elementwise op across threads costs more than it saves.
const MIN_ROWS_PER_CHUNK: usize = 4;

fn worker_loop(s: &Shared, spin: Duration) {
    let mut seen = 0u64;
    loop {
        let idle_since = Instant::now();
        let mut spins = 0u32;
        loop {
            if s.shutdown.load(Ordering::Acquire) {
                return;
            }
            if s.epoch.load(Ordering::Acquire) != seen {
                break;
            }
            // Reading the clock costs more than a spin: look at it every few dozen spins.
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(CLOCK_EVERY) {
                std::hint::spin_loop();
                continue;
            }
            let idle = idle_since.elapsed();
            if idle < spin {
                std::hint::spin_loop();
            } else if !spin.is_zero() && idle < spin + YIELD {
                std::thread::yield_now();
            } else {
                s.sleepers.fetch_add(1, Ordering::AcqRel);
                let guard = s.sleep_lock.lock().expect("sleep lock");
                if s.epoch.load(Ordering::Acquire) == seen && !s.shutdown.load(Ordering::Acquire) {
                    let _unused = s
                        .wake
                        .wait_timeout(guard, Duration::from_millis(50))
                        .expect("sleep lock");
                }
                s.sleepers.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let (epoch, job) = *s.job.lock().expect("job slot");
        seen = s.epoch.load(Ordering::Acquire).max(epoch);
        if let Some(job) = job {
            s.work(epoch, job);
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        {
            let _g = self
                .shared
                .sleep_lock
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPIN_FOR_TESTS: Duration = Duration::from_micros(200);

    #[test]
    fn every_task_runs_exactly_once_across_many_jobs() {
        let pool = ThreadPool::new(3, SPIN_FOR_TESTS).unwrap();
        for n in [0, 1, 2, 5, 64, 1000] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..50 {
                pool.for_each(n, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 50),
                "n = {n}"
            );
        }
    }

    #[test]
    fn sleeping_workers_wake_up() {
        let pool = ThreadPool::new(2, SPIN_FOR_TESTS).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let sum = AtomicUsize::new(0);
        pool.for_each(100, |i| {
            sum.fetch_add(i, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 4950);
    }

    #[test]
    fn a_panicking_task_is_reraised_after_all_tasks_finish() {
        let pool = ThreadPool::new(2, SPIN_FOR_TESTS).unwrap();
        let ran = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.for_each(10, |i| {
                ran.fetch_add(1, Ordering::Relaxed);
                assert!(i != 3, "task 3 fails");
            })
        }));
        assert!(r.is_err());
        assert_eq!(ran.load(Ordering::Relaxed), 10);
        // The pool still works afterwards.
        let count = AtomicUsize::new(0);
        pool.for_each(8, |_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn sessions_on_other_threads_can_share_the_pool() {
        let pool = Arc::new(ThreadPool::new(2, SPIN_FOR_TESTS).unwrap());
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let c = AtomicUsize::new(0);
                        pool.for_each(7, |_| {
                            c.fetch_add(1, Ordering::Relaxed);
                        });
                        assert_eq!(c.load(Ordering::Relaxed), 7);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
