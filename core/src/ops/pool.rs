//! The worker threads a model computes on: a persistent pool whose idle workers spin
//! briefly before sleeping, so the ~250 small parallel ops of one decoded token start in
//! well under a microsecond instead of waking sleeping threads each time. How long they
//! spin is the pool's `idle_spin` (zero: sleep at once, for a device on battery).
//!
//! Dispatching a job allocates nothing: tasks are numbered, each task learns the index of
//! the thread running it (the caller is thread 0), and mutable buffers are split among
//! tasks by index arithmetic ([`ThreadPool::for_chunks_mut`]).

use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long an idle worker spins before it yields, then sleeps, unless told otherwise.
pub const DEFAULT_IDLE_SPIN: Duration = Duration::from_micros(200);
/// Idle time after which a worker stops yielding and sleeps.
const YIELD: Duration = Duration::from_millis(2);
/// Spins between two looks at the clock while idle.
const CLOCK_EVERY: u32 = 64;

/// A task body: `f(task, thread)`.
type TaskFn = dyn Fn(usize, usize) + Sync + 'static;

/// A job as the workers see it: a type- and lifetime-erased `&dyn Fn(task, thread)` plus a
/// count.
#[derive(Clone, Copy)]
struct Job {
    f: *const TaskFn,
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
    /// Runs tasks of job `epoch` on thread `thread` until none are left.
    fn work(&self, epoch: u64, job: Job, thread: usize) {
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
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(index, thread))) {
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
    /// whose idle workers spin for `idle_spin` before yielding and then sleeping (zero:
    /// sleep at once; [`DEFAULT_IDLE_SPIN`] suits a plugged-in machine).
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
                    .spawn(move || worker_loop(&shared, i, idle_spin))
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
        self.for_each_indexed(n, |task, _| f(task));
    }

    /// Runs `f(task, thread)` for `task in 0..n` and waits for all; `thread` (below
    /// [`n_threads`](Self::n_threads), 0 for the caller) names the thread running the task,
    /// and no two threads share one during a call, so it can index per-thread scratch.
    /// A panic in any task is re-raised here after every task has finished.
    pub fn for_each_indexed(&self, n: usize, f: impl Fn(usize, usize) + Sync) {
        if n <= 1 || self.workers.is_empty() {
            (0..n).for_each(|task| f(task, 0));
            return;
        }
        let _serial = self.dispatch.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        let local: &(dyn Fn(usize, usize) + Sync) = &f;
        // SAFETY: the lifetime is erased only for the duration of this call: workers use the
        // pointer only for task indices claimed in this epoch, and this function does not
        // return before all `n` of them have finished (`done == n`), after which no index of
        // this epoch can be claimed any more.
        let erased: &'static TaskFn = unsafe { std::mem::transmute(local) };
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
        s.work(epoch, job, 0);
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

    /// Splits `x` into runs of `chunk_len` (the last may be shorter) and calls
    /// `f(chunk, chunk_index)` on each, in parallel.
    pub fn for_chunks_mut<T: Send>(
        &self,
        x: &mut [T],
        chunk_len: usize,
        f: impl Fn(&mut [T], usize) + Sync,
    ) {
        let parts = Disjoint::new(x);
        let chunk_len = chunk_len.max(1);
        self.for_each(parts.len.div_ceil(chunk_len), |i| {
            // SAFETY: each task index runs once, and chunks of distinct indices are disjoint.
            let chunk = unsafe { parts.range(i * chunk_len, chunk_len) };
            f(chunk, i);
        });
    }

    /// As [`for_chunks_mut`](Self::for_chunks_mut), also lending each task the entry of
    /// `per_thread` that belongs to the thread running it (`per_thread` holds at least
    /// [`n_threads`](Self::n_threads) entries): `f(chunk, chunk_index, state)`.
    pub fn for_chunks_mut_with<T: Send, S: Send>(
        &self,
        x: &mut [T],
        chunk_len: usize,
        per_thread: &mut [S],
        f: impl Fn(&mut [T], usize, &mut S) + Sync,
    ) {
        assert!(
            per_thread.len() >= self.n_threads(),
            "{} per-thread states for {} threads",
            per_thread.len(),
            self.n_threads()
        );
        let parts = Disjoint::new(x);
        let states = Disjoint::new(per_thread);
        let chunk_len = chunk_len.max(1);
        self.for_each_indexed(parts.len.div_ceil(chunk_len), |i, thread| {
            // SAFETY: each task index runs once, and chunks of distinct indices are disjoint.
            let chunk = unsafe { parts.range(i * chunk_len, chunk_len) };
            // SAFETY: a thread index belongs to one thread for the whole call and that
            // thread runs its tasks one after another, so this entry has no other borrower.
            let state = unsafe { &mut states.range(thread, 1)[0] };
            f(chunk, i, state);
        });
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
        self.for_chunks_mut(x, per_chunk * row_len, |rows, i| f(rows, i * per_chunk));
    }
}

/// A mutable slice lent to several tasks at once, each taking a part no other task takes.
struct Disjoint<'a, T> {
    ptr: *mut T,
    len: usize,
    _lent: PhantomData<&'a mut [T]>,
}

// SAFETY: a `Disjoint` only hands out `&mut` parts of a `&mut [T]` to tasks that each take
// a different part, which is what sending `&mut [T]` pieces to other threads allows.
unsafe impl<T: Send> Sync for Disjoint<'_, T> {}

impl<'a, T> Disjoint<'a, T> {
    fn new(x: &'a mut [T]) -> Self {
        Self {
            ptr: x.as_mut_ptr(),
            len: x.len(),
            _lent: PhantomData,
        }
    }

    /// `len` elements from `start` (fewer at the end).
    ///
    /// # Safety
    /// No other live reference may overlap the range.
    #[allow(clippy::mut_from_ref)]
    unsafe fn range(&self, start: usize, len: usize) -> &mut [T] {
        let start = start.min(self.len);
        let len = len.min(self.len - start);
        // SAFETY: the range lies inside the slice; exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// Rows below which splitting an elementwise op across threads costs more than it saves.
const MIN_ROWS_PER_CHUNK: usize = 4;

/// A worker's life: wait for a job (spinning for `idle_spin`, then yielding, then
/// sleeping), run its tasks as thread `thread`, repeat until shutdown.
fn worker_loop(s: &Shared, thread: usize, idle_spin: Duration) {
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
            if !idle_spin.is_zero() && !spins.is_multiple_of(CLOCK_EVERY) {
                std::hint::spin_loop();
                continue;
            }
            // Without a spin budget the worker goes straight to sleep.
            let idle = if idle_spin.is_zero() {
                YIELD
            } else {
                idle_since.elapsed()
            };
            if idle < idle_spin {
                std::hint::spin_loop();
            } else if idle < YIELD {
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
            s.work(epoch, job, thread);
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

    #[test]
    fn every_task_runs_exactly_once_across_many_jobs() {
        let pool = ThreadPool::new(3, DEFAULT_IDLE_SPIN).unwrap();
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
        let pool = ThreadPool::new(2, DEFAULT_IDLE_SPIN).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let sum = AtomicUsize::new(0);
        pool.for_each(100, |i| {
            sum.fetch_add(i, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 4950);
    }

    #[test]
    fn a_panicking_task_is_reraised_after_all_tasks_finish() {
        let pool = ThreadPool::new(2, DEFAULT_IDLE_SPIN).unwrap();
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
        let pool = Arc::new(ThreadPool::new(2, DEFAULT_IDLE_SPIN).unwrap());
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

    #[test]
    fn chunks_and_per_thread_state_are_handed_out_once() {
        for (threads, spin) in [
            (1, DEFAULT_IDLE_SPIN),
            (3, DEFAULT_IDLE_SPIN),
            (3, Duration::ZERO),
        ] {
            let pool = ThreadPool::new(threads, spin).unwrap();
            for _ in 0..20 {
                let mut x = vec![0usize; 103];
                let mut per_thread = vec![0usize; pool.n_threads()];
                pool.for_chunks_mut_with(&mut x, 10, &mut per_thread, |chunk, i, tasks| {
                    chunk.iter_mut().for_each(|v| *v += i + 1);
                    *tasks += 1;
                });
                assert!(x.iter().enumerate().all(|(j, &v)| v == j / 10 + 1));
                assert_eq!(per_thread.iter().sum::<usize>(), 11);
                let mut rows = vec![0.0f32; 40 * 3];
                pool.for_rows(&mut rows, 3, |r, first| {
                    for (k, row) in r.chunks_exact_mut(3).enumerate() {
                        row.fill((first + k) as f32);
                    }
                });
                assert!(rows.iter().enumerate().all(|(j, &v)| v == (j / 3) as f32));
            }
        }
    }
}
