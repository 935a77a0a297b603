//! Small fixed pools of threads for CPU-heavy work: password hashing and
//! RSA signing. The async workers hand such work over and go on serving, so
//! a burst of it queues here, one job per thread at a time, instead of
//! holding the workers (a login burst cannot starve token requests, and
//! signing cannot delay discovery or introspection).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

struct Queue {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job: only then does a new job need a wake-up.
    waiting: usize,
}

/// A pool of one thread per core, started on first use.
pub struct Pool {
    name: &'static str,
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Called by a thread that finds the queue empty, before it waits.
    on_idle: fn(),
    started: OnceLock<()>,
}

impl Pool {
    pub const fn new(name: &'static str, on_idle: fn()) -> Pool {
        Pool {
            name,
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                waiting: 0,
            }),
            ready: Condvar::new(),
            on_idle,
            started: OnceLock::new(),
        }
    }

    /// Run `f` on the pool; `None` if the pool cannot take it.
    pub async fn run<T, F>(&'static self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.started.get_or_init(|| self.start());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let wake = match self.queue.lock() {
            Ok(mut queue) => {
                queue.jobs.push_back(job);
                queue.waiting > 0
            }
            Err(_) => return None,
        };
        if wake {
            self.ready.notify_one();
        }
        rx.await.ok()
    }

    fn start(&'static self) {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        for i in 0..n {
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{i}", self.name))
                .spawn(move || {
                    while let Some(job) = self.next() {
                        job();
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, pool = self.name, "cannot start a worker thread");
            }
        }
    }

    /// The next job, waiting for one. `None` if the queue's lock is poisoned
    /// (never: jobs run unlocked).
    fn next(&self) -> Option<Job> {
        let mut queue = self.queue.lock().ok()?;
        if queue.jobs.is_empty() {
            drop(queue);
            (self.on_idle)();
            queue = self.queue.lock().ok()?;
        }
        loop {
            if let Some(job) = queue.jobs.pop_front() {
                return Some(job);
            }
            queue.waiting += 1;
            queue = self.ready.wait(queue).ok()?;
            queue.waiting -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static POOL: Pool = Pool::new("sesame-test", || {});

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_jobs_off_the_async_workers_and_returns_their_results() {
        let here = std::thread::current().id();
        let (value, there) = POOL
            .run(|| (6 * 7, std::thread::current().id()))
            .await
            .unwrap();
        assert_eq!(value, 42);
        assert_ne!(here, there);
        let all = futures_join(64).await;
        assert_eq!(all, (0..64).map(|i| i * 2).collect::<Vec<_>>());
    }

    async fn futures_join(n: u64) -> Vec<u64> {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            set.spawn(async move { (i, POOL.run(move || i * 2).await.unwrap()) });
        }
        let mut out = vec![0; n as usize];
        while let Some(r) = set.join_next().await {
            let (i, v) = r.unwrap();
            out[i as usize] = v;
        }
        out
    }
}
