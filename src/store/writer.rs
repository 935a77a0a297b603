//! Group commit for SQLite. SQLite takes one writer at a time, so each node
//! has one writer thread that owns the node's write connection. Writes are
//! queued to it (a bounded channel); it takes every write that queued while
//! it was busy (up to [`MAX_BATCH`]) and runs them, in order, in one
//! `BEGIN IMMEDIATE` transaction, each inside its own savepoint, then
//! commits once and only then answers each of them. Durability is that of
//! a single write (WAL, `synchronous = NORMAL`): nobody hears of a write
//! before its transaction has committed.
//!
//! - The writes of a batch run one after the other, so a conditional
//!   `UPDATE … WHERE consumed_at IS NULL` in one sees the writes before it:
//!   of two spends of a code in a batch, the second finds it spent.
//! - A write that fails (an error, a panic) has its savepoint rolled back:
//!   it fails alone and the others commit.
//! - If the transaction itself is lost (SQLite rolled it back after an I/O
//!   error, its `COMMIT` failed, a savepoint could not be rolled back), the
//!   writes that ran in it fail with that error: a write is a `FnOnce` and
//!   cannot be run again. Those not run yet go on to the next transaction,
//!   and the connection is closed and opened afresh.
//! - A write whose caller has already given up (its deadline passed) is
//!   dropped unrun.
//!
//! Checkpoints of the WAL run off the write path: a checkpointer thread
//! with its own connection copies committed frames into the database file
//! (`PRAGMA wal_checkpoint(PASSIVE)`, which never blocks the writer) after
//! every [`CHECKPOINT_AFTER`] writes and when the writes pause, so the
//! fsyncs of a checkpoint happen beside the writer rather than in it. The
//! writer's own automatic checkpoint stays as the backstop (SQLite's
//! `wal_autocheckpoint`): it runs at a commit that crosses the threshold
//! when the checkpointer has not kept up, and then finds little left to
//! copy; being the writer's, it completes, so the WAL starts over from its
//! beginning instead of growing. Durability is unchanged: a checkpoint
//! only moves frames that are already committed.
//!
//! MySQL/MariaDB and PostgreSQL take concurrent writers: their writes run
//! on pooled connections, one transaction each, as before.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::r2d2::{CustomizeConnection, ManageConnection};
use diesel::result::Error as DieselError;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{mpsc, oneshot};

use super::conn::{
    begin_write, checkpoint, query_error, CheckpointMode, DbConnection, Manager, SqlitePragmas,
};
use super::{Backend, StoreError};

/// The most writes one transaction takes.
pub(crate) const MAX_BATCH: usize = 64;

/// The most writes waiting for the writer; past it, callers wait (within
/// their deadline) for a place.
pub(crate) const QUEUE: usize = 1024;

/// Writes committed between two checkpoints by the checkpointer thread
/// (a few hundred pages of WAL at most).
pub(crate) const CHECKPOINT_AFTER: usize = 512;

/// A pause in the writes this long, after some, and the checkpointer
/// checkpoints what they left.
const CHECKPOINT_IDLE: Duration = Duration::from_millis(250);

/// One queued write, as the writer thread sees it (its result type erased).
trait Job: Send {
    /// Runs outside any transaction (`VACUUM`, WAL checkpoints), alone.
    fn alone(&self) -> bool;
    /// The caller stopped waiting for the answer.
    fn abandoned(&self) -> bool;
    fn queued_at(&self) -> Instant;
    /// Run the work and keep its result; true if it succeeded.
    fn run(&mut self, conn: &mut DbConnection) -> bool;
    /// The work succeeded but is not kept after all.
    fn fail(&mut self, e: StoreError);
    /// Tell the caller: the work's own result if `outcome` is `Ok` (its
    /// transaction committed), else `outcome`'s error, unless the work
    /// failed by itself (that error is the answer).
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>);
}

struct Pending<T, F> {
    work: Option<F>,
    done: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    alone: bool,
    queued_at: Instant,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
{
    fn alone(&self) -> bool {
        self.alone
    }

    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn queued_at(&self) -> Instant {
        self.queued_at
    }

    fn run(&mut self, conn: &mut DbConnection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let done = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StoreError::Query("a store write panicked".into())));
        let ok = done.is_ok();
        self.done = Some(done);
        ok
    }

    fn fail(&mut self, e: StoreError) {
        self.done = Some(Err(e));
    }

    fn answer(self: Box<Self>, outcome: Result<(), StoreError>) {
        let result = match (self.done, outcome) {
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(e)) => Err(e),
            (None, Ok(())) => Err(StoreError::Query("the write was never run".into())),
        };
        // The caller may have given up meanwhile: nobody to tell.
        let _ = self.reply.send(result);
    }
}

/// The handle callers queue writes on (cheap to clone). The thread ends
/// when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Start the writer thread of the SQLite database at `path`. Its
    /// connection is opened at the first write. `wait` records how long
    /// each write waited for its turn, `batches` how many writes each
    /// transaction took.
    pub(crate) fn start(
        path: String,
        wait: Histogram,
        batches: Histogram,
    ) -> Result<Writer, StoreError> {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let (committed, commits) = std::sync::mpsc::channel();
        let checkpointer = Manager {
            backend: Backend::Sqlite,
            url: path.clone(),
        };
        let thread = Thread {
            manager: Manager {
                backend: Backend::Sqlite,
                url: path,
            },
            conn: None,
            wait,
            batches,
            committed,
        };
        std::thread::Builder::new()
            .name("sesame-db-checkpointer".into())
            .spawn(move || checkpoints(&checkpointer, &commits))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the checkpointer thread: {e}"))
            })?;
        std::thread::Builder::new()
            .name("sesame-db-writer".into())
            .spawn(move || thread.serve(jobs))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { queue })
    }

    /// Queue `work` and wait for its answer, for `deadline` at most (queueing
    /// included): past it the answer is `Unavailable`, and the work is
    /// dropped if it has not started yet.
    pub(crate) async fn write<T, F>(
        &self,
        deadline: Duration,
        alone: bool,
        work: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Pending {
            work: Some(work),
            done: None,
            reply,
            alone,
            queued_at: Instant::now(),
        });
        let asked = async {
            self.queue
                .send(job)
                .await
                .map_err(|_| StoreError::Unavailable("the database writer has stopped".into()))?;
            answer.await.map_err(|_| {
                StoreError::Unavailable("the database writer stopped before answering".into())
            })?
        };
        match tokio::time::timeout(deadline, asked).await {
            Ok(answered) => answered,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer from the database within {deadline:?}"
            ))),
        }
    }

    /// The writer thread is gone (it cannot be, short of a bug in it):
    /// no write can be made.
    pub(crate) fn stopped(&self) -> bool {
        self.queue.is_closed()
    }

    /// Writes queued and not yet taken by the writer (for tests).
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// What the writer thread owns.
struct Thread {
    manager: Manager,
    conn: Option<DbConnection>,
    wait: Histogram,
    batches: Histogram,
    /// How many writes each committed transaction held, for the
    /// checkpointer (it ends when this is dropped with the thread).
    committed: std::sync::mpsc::Sender<usize>,
}

impl Thread {
    fn serve(mut self, mut jobs: mpsc::Receiver<Box<dyn Job>>) {
        // Taken from the queue, not run yet (a batch's leftovers come first).
        let mut taken: VecDeque<Box<dyn Job>> = VecDeque::new();
        loop {
            if taken.is_empty() {
                match jobs.blocking_recv() {
                    Some(job) => taken.push_back(job),
                    // Every handle is gone: the store was dropped.
                    None => return,
                }
            }
            while taken.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => taken.push_back(job),
                    Err(_) => break,
                }
            }
            taken.retain(|job| !job.abandoned());
            let Some(first) = taken.pop_front() else {
                continue;
            };
            if first.alone() {
                self.alone(first);
                continue;
            }
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH && taken.front().is_some_and(|j| !j.alone()) {
                if let Some(job) = taken.pop_front() {
                    batch.push(job);
                }
            }
            let leftovers = self.batch(batch);
            for job in leftovers.into_iter().rev() {
                taken.push_front(job);
            }
        }
    }

    /// The connection, opened (with the pragmas of every SQLite connection) if need be.
    fn connection(&mut self) -> Result<&mut DbConnection, StoreError> {
        open(&mut self.conn, &self.manager)
    }

    /// Close the connection: an open transaction on it is rolled back, and
    /// the next write opens a fresh one.
    fn discard(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = conn.batch_execute("ROLLBACK");
        }
    }

    fn alone(&mut self, mut job: Box<dyn Job>) {
        self.wait.observe(job.queued_at().elapsed().as_secs_f64());
        self.batches.observe(1.0);
        let conn = match self.connection() {
            Ok(conn) => conn,
            Err(e) => return job.answer(Err(e)),
        };
        job.run(conn);
        // A write that left a transaction open (or a broken one) leaves
        // the connection to nobody else.
        let depth = depth(conn);
        if !matches!(depth, Ok(None)) {
            job.fail(StoreError::Query(
                "a write left its transaction open".into(),
            ));
            self.discard();
        }
        job.answer(Ok(()));
    }

    /// Run `batch` in one transaction; returns the writes that were not run.
    fn batch(&mut self, batch: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
        let conn = match open(&mut self.conn, &self.manager) {
            Ok(conn) => conn,
            Err(e) => {
                for job in batch {
                    job.answer(Err(e.clone()));
                }
                return Vec::new();
            }
        };
        if let Err(e) = begin_write(conn) {
            let e = query_error(e);
            for job in batch {
                job.answer(Err(e.clone()));
            }
            self.discard();
            return Vec::new();
        }
        let mut ran: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
        let mut pending = batch.into_iter();
        let mut lost: Option<StoreError> = None;
        for mut job in pending.by_ref() {
            self.wait.observe(job.queued_at().elapsed().as_secs_f64());
            if let Err(e) = begin_write(conn) {
                let e = lost_error(e);
                job.answer(Err(e.clone()));
                lost = Some(e);
                break;
            }
            let ok = job.run(conn);
            let settled = settle(conn, ok);
            if ok && matches!(settled, Ok(false)) {
                job.fail(StoreError::Query("a write left a savepoint open".into()));
            }
            ran.push(job);
            if let Err(e) = settled {
                lost = Some(lost_error(e));
                break;
            }
        }
        // Not run: on to the next transaction.
        let leftovers: Vec<Box<dyn Job>> = pending.collect();
        if !ran.is_empty() {
            self.batches.observe(ran.len() as f64);
        }
        let outcome = match lost {
            Some(e) => Err(e),
            None => commit(conn).map_err(lost_error),
        };
        match &outcome {
            Ok(()) => {
                // The checkpointer is gone only if it panicked: the
                // writer's automatic checkpoints still keep the WAL short.
                let _ = self.committed.send(ran.len());
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = ran.len(), "a SQLite write transaction was lost: its writes fail");
                self.discard();
            }
        }
        for job in ran {
            job.answer(outcome.clone());
        }
        leftovers
    }
}

fn open<'c>(
    conn: &'c mut Option<DbConnection>,
    manager: &Manager,
) -> Result<&'c mut DbConnection, StoreError> {
    if conn.is_none() {
        let mut opened = manager
            .connect()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        SqlitePragmas
            .on_acquire(&mut opened)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        *conn = Some(opened);
    }
    conn.as_mut()
        .ok_or_else(|| StoreError::Unavailable("no database connection".into()))
}

/// The checkpointer thread: a passive checkpoint after every
/// [`CHECKPOINT_AFTER`] committed writes, and after a pause of
/// [`CHECKPOINT_IDLE`] in the writes; until the writer thread ends.
fn checkpoints(manager: &Manager, commits: &std::sync::mpsc::Receiver<usize>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut conn: Option<DbConnection> = None;
    let mut since = 0usize;
    loop {
        match commits.recv_timeout(CHECKPOINT_IDLE) {
            Ok(n) => {
                since += n;
                if since < CHECKPOINT_AFTER {
                    continue;
                }
            }
            Err(RecvTimeoutError::Timeout) if since > 0 => {}
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        since = 0;
        let done = open(&mut conn, manager)
            .and_then(|c| checkpoint(c, CheckpointMode::Passive).map_err(query_error));
        if let Err(e) = done {
            // The writer's own checkpoints go on; try again afresh next time.
            tracing::debug!(error = %e, "a background WAL checkpoint failed");
            conn = None;
        }
    }
}

/// The error of the writes whose shared transaction is lost.
fn lost_error(e: DieselError) -> StoreError {
    match query_error(e) {
        StoreError::Query(m) => StoreError::Query(format!("the transaction was rolled back: {m}")),
        other => other,
    }
}

/// The transaction depth diesel keeps for the connection.
fn depth(conn: &mut DbConnection) -> Result<Option<u32>, DieselError> {
    <DbConnection as TransactionManager<DbConnection>>::transaction_manager_status_mut(conn)
        .transaction_depth()
        .map(|d| d.map(|d| d.get()))
}

/// After a write of a batch (depth 2: the batch's transaction and the
/// write's savepoint): release its savepoint if it succeeded (`keep`), roll
/// it back otherwise, so the batch's transaction is at depth 1 again.
/// Savepoints the write left open (it panicked within its own
/// transaction) are rolled back, and then it is not kept either. Returns
/// whether it was kept; an error means the batch's transaction is lost.
fn settle(conn: &mut DbConnection, keep: bool) -> Result<bool, DieselError> {
    let mut keep = keep;
    loop {
        match depth(conn)? {
            Some(d) if d > 2 => {
                keep = false;
                <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(conn)?;
            }
            Some(2) => break,
            // The write closed the batch's savepoint or transaction itself.
            _ => return Err(DieselError::NotInTransaction),
        }
    }
    if keep {
        <DbConnection as TransactionManager<DbConnection>>::commit_transaction(conn)?;
    } else {
        <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(conn)?;
    }
    match depth(conn)? {
        Some(1) => Ok(keep),
        _ => Err(DieselError::NotInTransaction),
    }
}

fn commit(conn: &mut DbConnection) -> Result<(), DieselError> {
    <DbConnection as TransactionManager<DbConnection>>::commit_transaction(conn)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use diesel::prelude::*;

    use super::super::{schema, AccessTokenRow, CodeConsumption, CodeRow, Issued, SessionRow};
    use super::super::{Store, StoreError, TokenHash};

    const NOW: i64 = 1_700_000_000;
    const T: &str = "tenant-a";

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(
            "sqlite://batch.db",
            4,
            std::time::Duration::from_secs(30),
            dir.path(),
        )
        .unwrap();
        store.migrate().unwrap();
        (dir, store)
    }

    fn session(cookie: &str) -> SessionRow {
        SessionRow {
            tenant_id: T.into(),
            session_hash: TokenHash::of(cookie),
            sid: format!("sid-{cookie}"),
            user_sub: "alice".into(),
            auth_time: NOW - 5,
            created_at: NOW,
            expires_at: NOW + 3600,
            revoked_at: None,
        }
    }

    fn insert(conn: &mut super::DbConnection, row: SessionRow) -> Result<(), StoreError> {
        diesel::insert_into(schema::sessions::table)
            .values(row)
            .execute(conn)
            .map(|_| ())
            .map_err(super::query_error)
    }

    /// The writer, held busy by a write until the returned sender is
    /// dropped (or sent to): writes queued meanwhile form the next batch.
    async fn hold(store: &Store) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (started, running) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let s = store.clone();
        let held = tokio::spawn(async move {
            s.write(move |_| {
                let _ = started.send(());
                let _ = released.recv();
                Ok(())
            })
            .await
            .unwrap();
        });
        running.await.unwrap();
        (release, held)
    }

    /// Wait until `n` writes are queued behind the held writer.
    async fn queued(store: &Store, n: usize) {
        let writer = store.writer.as_ref().unwrap();
        while writer.queued() < n {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(writer.queued(), n);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_write_fails_alone_and_the_rest_of_its_batch_commits() {
        let (_dir, store) = store();
        let (release, held) = hold(&store).await;
        let mut answers = Vec::new();
        // Each write queued behind the held one, in this order.
        macro_rules! queue {
            (|$s:ident| $write:expr) => {{
                let $s = store.clone();
                answers.push(tokio::spawn(async move { $write.await }));
                queued(&store, answers.len()).await;
            }};
        }
        queue!(|s| s.insert_session(session("one")));
        // Writes a row, then fails: the row goes with it.
        queue!(|s| s.write(|conn| {
            insert(conn, session("two"))?;
            Err::<(), _>(StoreError::Query("refused on purpose".into()))
        }));
        // A database error: the primary key of "one" again.
        queue!(|s| s.insert_session(session("one")));
        // Writes a row, then panics.
        queue!(|s| s.write(|conn| {
            insert(conn, session("three"))?;
            panic!("a write that panics");
        }));
        // Fails inside its own transaction (`write_tx`), after a write.
        queue!(|s| s.write(|conn| {
            super::super::q(super::super::conn::write_tx(conn, |conn| {
                diesel::insert_into(schema::sessions::table)
                    .values(session("four"))
                    .execute(conn)?;
                diesel::insert_into(schema::sessions::table)
                    .values(session("four"))
                    .execute(conn)
            }))
            .map(|_| ())
        }));
        queue!(|s| s.insert_session(session("five")));
        let n = answers.len();
        assert_eq!(queued_now(&store), n);
        release.send(()).unwrap();
        held.await.unwrap();
        let mut results = Vec::new();
        for a in answers {
            results.push(a.await.unwrap());
        }
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(
            matches!(&results[1], Err(StoreError::Query(m)) if m == "refused on purpose"),
            "{:?}",
            results[1]
        );
        assert!(
            matches!(results[2], Err(StoreError::Query(_))),
            "{:?}",
            results[2]
        );
        assert!(
            matches!(results[3], Err(StoreError::Query(_))),
            "{:?}",
            results[3]
        );
        assert!(
            matches!(results[4], Err(StoreError::Query(_))),
            "{:?}",
            results[4]
        );
        assert!(results[5].is_ok(), "{:?}", results[5]);
        // Held write, then all of these in one transaction.
        assert_eq!(observed(&store), (2, 1.0 + n as f64));
        for (cookie, kept) in [
            ("one", true),
            ("two", false),
            ("three", false),
            ("four", false),
            ("five", true),
        ] {
            let found = store
                .find_session(T, TokenHash::of(cookie), NOW)
                .await
                .unwrap();
            assert_eq!(found.is_some(), kept, "{cookie}");
        }
        // And the writer goes on.
        store.insert_session(session("six")).await.unwrap();
    }

    /// (count, sum) of the batch-size histogram, as `/metrics` shows them.
    fn observed(store: &Store) -> (u64, f64) {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("batch", "", store.batch_histogram());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let value = |suffix: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("batch_{suffix} ")))
                .unwrap()
                .trim()
                .to_string()
        };
        (
            value("count").parse().unwrap(),
            value("sum").parse().unwrap(),
        )
    }

    fn queued_now(store: &Store) -> usize {
        store.writer.as_ref().unwrap().queued()
    }

    fn code() -> CodeRow {
        CodeRow {
            tenant_id: T.into(),
            code_hash: TokenHash::of("hot-code"),
            grant_id: "grant-hot".into(),
            client_id: "client-1".into(),
            user_sub: "alice".into(),
            redirect_uri: "https://rp.example/cb".into(),
            scope: "openid".into(),
            nonce: None,
            code_challenge: None,
            code_challenge_method: None,
            auth_time: NOW - 10,
            refresh_token: false,
            created_at: NOW,
            expires_at: NOW + 60,
            consumed_at: None,
            redirect_uri_sent: true,
            generation: String::new(),
            resource: None,
            dpop_jkt: None,
            sid: None,
        }
    }

    fn access(secret: &str) -> AccessTokenRow {
        AccessTokenRow {
            tenant_id: T.into(),
            token_hash: TokenHash::of(secret),
            grant_id: "grant-hot".into(),
            client_id: "client-1".into(),
            user_sub: Some("alice".into()),
            scope: "openid".into(),
            jwt: false,
            created_at: NOW,
            expires_at: NOW + 300,
            revoked_at: None,
            generation: String::new(),
            jkt: None,
            audience: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn spends_of_one_code_in_one_batch_have_one_winner() {
        let (_dir, store) = store();
        store.insert_code(code()).await.unwrap();
        let before = observed(&store);
        let (release, held) = hold(&store).await;
        let spends = 40;
        let barrier = Arc::new(tokio::sync::Barrier::new(spends));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..spends {
            let (s, barrier) = (store.clone(), barrier.clone());
            set.spawn(async move {
                barrier.wait().await;
                let issued = Issued {
                    access_token: Some(access(&format!("token-{i}"))),
                    refresh_token: None,
                };
                let spent = s
                    .consume_code(T, TokenHash::of("hot-code"), NOW, issued)
                    .await;
                (i, spent)
            });
        }
        queued(&store, spends).await;
        release.send(()).unwrap();
        held.await.unwrap();
        let mut winners = Vec::new();
        let mut replays = 0;
        while let Some(joined) = set.join_next().await {
            match joined.unwrap() {
                (i, Ok(CodeConsumption::Consumed)) => winners.push(i),
                (_, Ok(CodeConsumption::AlreadyUsed(row))) => {
                    assert_eq!(row.consumed_at, Some(NOW));
                    replays += 1;
                }
                (_, other) => panic!("{other:?}"),
            }
        }
        assert_eq!((winners.len(), replays), (1, spends - 1));
        // The held write's batch, then one batch of every spend.
        let after = observed(&store);
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (2, 1.0 + spends as f64)
        );
        // Only the winner's token was written.
        for i in 0..spends {
            let token = store
                .find_access_token(T, TokenHash::of(&format!("token-{i}")))
                .await
                .unwrap();
            assert_eq!(token.is_some(), winners == [i], "token-{i}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_write_past_its_deadline_is_unavailable_and_never_runs() {
        let (_dir, store) = store();
        let (release, held) = hold(&store).await;
        let writer = store.writer.clone().unwrap();
        let late = writer
            .write(std::time::Duration::from_millis(20), false, |conn| {
                insert(conn, session("late"))
            })
            .await;
        assert!(matches!(late, Err(StoreError::Unavailable(_))), "{late:?}");
        release.send(()).unwrap();
        held.await.unwrap();
        // Writes are taken in order: once this one is answered, the late
        // one was taken too, and dropped.
        store.insert_session(session("after")).await.unwrap();
        assert!(store
            .find_session(T, TokenHash::of("late"), NOW)
            .await
            .unwrap()
            .is_none());
        assert!(store
            .find_session(T, TokenHash::of("after"), NOW)
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_write_that_needs_no_transaction_runs_alone_between_batches() {
        let (_dir, store) = store();
        let (release, held) = hold(&store).await;
        let s = store.clone();
        let before = tokio::spawn(async move { s.insert_session(session("before")).await });
        queued(&store, 1).await;
        let s = store.clone();
        let vacuum = tokio::spawn(async move {
            s.write_alone(|conn| {
                use diesel::connection::SimpleConnection;
                // Fails inside a transaction.
                super::super::q(conn.batch_execute("VACUUM"))
            })
            .await
        });
        queued(&store, 2).await;
        let s = store.clone();
        let after = tokio::spawn(async move { s.insert_session(session("after")).await });
        queued(&store, 3).await;
        release.send(()).unwrap();
        held.await.unwrap();
        before.await.unwrap().unwrap();
        vacuum.await.unwrap().unwrap();
        after.await.unwrap().unwrap();
        // held, before, VACUUM alone, after.
        assert_eq!(observed(&store).0, 4);
    }

    /// Bytes of the database file itself (frames reach it only by a checkpoint).
    fn db_file_len(dir: &tempfile::TempDir) -> u64 {
        std::fs::metadata(dir.path().join("batch.db"))
            .map(|m| m.len())
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_checkpointer_moves_committed_writes_into_the_database_file() {
        let (dir, store) = store();
        let before = db_file_len(&dir);
        // Fewer pages than the writer's own automatic checkpoint waits for
        // (8,000): only the checkpointer can have copied them.
        for i in 0..super::CHECKPOINT_AFTER + 10 {
            store
                .insert_session(session(&format!("s{i}")))
                .await
                .unwrap();
        }
        let mut grown = false;
        for _ in 0..600 {
            if db_file_len(&dir) > before {
                grown = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(grown, "the database file is still {before} bytes");
        // The rows are all there, through the WAL or the file.
        for i in [0, super::CHECKPOINT_AFTER + 9] {
            assert!(store
                .find_session(T, TokenHash::of(&format!("s{i}")), NOW)
                .await
                .unwrap()
                .is_some());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_truncating_checkpoint_waits_out_the_checkpointer() {
        let (dir, store) = store();
        for i in 0..super::CHECKPOINT_AFTER * 2 {
            store
                .insert_session(session(&format!("t{i}")))
                .await
                .unwrap();
        }
        // The checkpointer is likely busy now; the truncation still happens.
        store
            .write_alone(|conn| {
                super::super::truncate_wal(conn);
                Ok(())
            })
            .await
            .unwrap();
        let wal = std::fs::metadata(dir.path().join("batch.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert_eq!(wal, 0, "the WAL was not emptied");
    }
}
