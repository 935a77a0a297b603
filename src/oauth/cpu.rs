//! Small fixed pools of threads for CPU-heavy work: password hashing, RSA
//! signing and plugin hooks. The async workers hand such work over and go on serving, so
//! a burst of it queues here, one job per thread at a time, instead of
//! holding the workers (a login burst cannot starve token requests, and
//! signing cannot delay discovery or introspection).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

struct Queue {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job: only then does a new job need a wake-up.
    waiting: usize,
    /// The pool was dropped: threads finish the queue and end.
    closed: bool,
}

struct Shared {
    name: &'static str,
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Called by a thread that finds the queue empty, before it waits.
    on_idle: fn(),
    /// Stack of each thread (`None`: the platform's default).
    stack_size: Option<usize>,
    /// Jobs queued or running.
    depth: std::sync::atomic::AtomicUsize,
}

/// A pool of one thread per core, started on first use. Owned by
/// [`super::Services`]: it lives as long as the process, whatever the
/// configuration generation. Its threads end once it is dropped and its
/// queue is empty.
pub struct Pool {
    shared: Arc<Shared>,
    started: OnceLock<()>,
}

impl Pool {
    pub fn new(name: &'static str, on_idle: fn()) -> Pool {
        Pool::build(name, on_idle, None)
    }

    /// A pool whose threads have `stack_size` bytes of stack.
    pub fn with_stack(name: &'static str, stack_size: usize) -> Pool {
        Pool::build(name, || {}, Some(stack_size))
    }

    fn build(name: &'static str, on_idle: fn(), stack_size: Option<usize>) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                name,
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    waiting: 0,
                    closed: false,
                }),
                ready: Condvar::new(),
                on_idle,
                stack_size,
                depth: std::sync::atomic::AtomicUsize::new(0),
            }),
            started: OnceLock::new(),
        }
    }

    /// Run `f` on the pool; `None` if the pool cannot take it.
    pub async fn run<T, F>(&self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.started.get_or_init(|| self.start());
        self.shared.depth.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let wake = match self.shared.queue.lock() {
            Ok(mut queue) => {
                queue.jobs.push_back(job);
                queue.waiting > 0
            }
            Err(_) => {
                self.shared.depth.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
        };
        if wake {
            self.shared.ready.notify_one();
        }
        rx.await.ok()
    }

    /// Jobs queued or running now.
    pub fn depth(&self) -> usize {
        self.shared.depth.load(Ordering::Relaxed)
    }

    fn start(&self) {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        for i in 0..n {
            let shared = self.shared.clone();
            let mut builder = std::thread::Builder::new().name(format!("{}-{i}", self.shared.name));
            if let Some(size) = self.shared.stack_size {
                builder = builder.stack_size(size);
            }
            let spawned = builder.spawn(move || {
                while let Some(job) = next(&shared) {
                    job();
                    shared.depth.fetch_sub(1, Ordering::Relaxed);
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, pool = self.shared.name, "cannot start a worker thread");
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.shared.queue.lock() {
            queue.closed = true;
        }
        self.shared.ready.notify_all();
    }
}

/// The next job, waiting for one. `None` once the pool is dropped and its
/// queue is empty, or if the queue's lock is poisoned (never: jobs run unlocked).
fn next(shared: &Shared) -> Option<Job> {
    let mut queue = shared.queue.lock().ok()?;
    if queue.jobs.is_empty() {
        drop(queue);
        (shared.on_idle)();
        queue = shared.queue.lock().ok()?;
    }
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            return Some(job);
        }
        if queue.closed {
            return None;
        }
        queue.waiting += 1;
        queue = shared.ready.wait(queue).ok()?;
        queue.waiting -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_jobs_off_the_async_workers_and_returns_their_results() {
        let pool = Arc::new(Pool::new("sesame-test", || {}));
        let here = std::thread::current().id();
        let (value, there) = pool
            .run(|| (6 * 7, std::thread::current().id()))
            .await
            .unwrap();
        assert_eq!(value, 42);
        assert_ne!(here, there);
        let all = futures_join(&pool, 64).await;
        assert_eq!(all, (0..64).map(|i| i * 2).collect::<Vec<_>>());
    }

    async fn futures_join(pool: &Arc<Pool>, n: u64) -> Vec<u64> {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let pool = pool.clone();
            set.spawn(async move { (i, pool.run(move || i * 2).await.unwrap()) });
        }
        let mut out = vec![0; n as usize];
        while let Some(r) = set.join_next().await {
            let (i, v) = r.unwrap();
            out[i as usize] = v;
        }
        out
    }
}
