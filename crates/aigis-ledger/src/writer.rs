//! The ledger service: a bounded queue in front of one writer thread that appends batches to
//! the store (one durable transaction per batch, acknowledged after commit) and signs a
//! checkpoint every `checkpoint_every` while the log grows.
//!
//! Back-pressure: [`Ledger::enqueue`] and [`Ledger::append`] wait for queue space (a
//! semaphore of `queue` permits released as the writer takes jobs); [`Ledger::try_enqueue`]
//! refuses instead. When the store fails, a batch goes to the [`Spool`] if one is configured
//! (acknowledged as [`Ack::Spooled`]) and is drained into the store, oldest first, once it
//! works again; with no spool, or a full one, the batch is refused and the ledger reports
//! itself unhealthy so the gateway refuses traffic (fail-closed). Nothing is dropped silently.
//!
//! An event too long for any reader to accept ([`crate::event::MAX_EVENT_LEN`]) never reaches
//! the store or the spool: [`Ledger::append`] and the enqueue methods refuse it with an error,
//! and a deferred job's is left out of its batch with an error log ([`Batch::push`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};

use crate::checkpoint::Checkpoint;
use crate::event::{Encoded, Event, EventRef};
use crate::keys::LedgerKeys;
use crate::merkle::Tree;
use crate::spool::Spool;
use crate::store::{Appender, SpoolMark, StoredCheckpoint};
use crate::{LedgerError, now_ms};

/// Most events committed in one transaction.
pub const MAX_BATCH: usize = 4096;
/// Default [`WriterConfig::linger`]: under load about 500 commits (`fdatasync`s) a second, so
/// an append waiting for its acknowledgement waits little more than 2 ms.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(2);
/// Default [`WriterConfig::stall`].
pub const DEFAULT_STALL: Duration = Duration::from_secs(10);

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Sign a checkpoint at most this often while entries arrive (and at shutdown).
    pub checkpoint_every: Duration,
    /// Queue capacity (events waiting for the writer).
    pub queue: usize,
    /// Largest batch per transaction.
    pub max_batch: usize,
    /// Shortest time between the starts of two batches. While it runs the writer sleeps
    /// instead of waiting on the queue, so appends queued meanwhile neither wake it nor cost a
    /// batch each: on a fast disk a busy gateway would otherwise commit (and context-switch)
    /// for every few events. When the disk is slower than this, it has no effect; an idle
    /// writer still takes the next append at once.
    pub linger: Duration,
    /// How long the writer may work on a batch (its commit, spooling, a probe of a failed
    /// store, a checkpoint) without a store operation returning before the ledger reports
    /// itself unhealthy: a disk or database that stops answering then has new traffic refused
    /// (fail-closed) instead of queued behind it without end. Healthy again when it answers.
    /// A spool drain that commits batch after batch makes progress and is no stall.
    pub stall: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: Duration::from_secs(1),
            queue: 65_536,
            max_batch: MAX_BATCH,
            linger: DEFAULT_LINGER,
            stall: DEFAULT_STALL,
        }
    }
}

/// How an append was made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Committed to the store at this index.
    Stored(u64),
    /// Written to the local spool (the store was failing); it gets an index when drained.
    Spooled,
}

type AckSender = oneshot::Sender<Result<Ack, LedgerError>>;

/// Events the writer completes itself (see [`Ledger::enqueue_deferred`]): the job adds them to
/// the batch.
pub type Deferred = Box<dyn FnOnce(&mut Batch) + Send>;

/// Most committed events a [`Batch`] keeps for their buffers: a batch's worth at most.
const SPARE_EVENTS: usize = MAX_BATCH;

/// A committed event whose buffers hold more than this is freed, not kept.
const SPARE_EVENT_BYTES: usize = 8 << 10;

/// Reports an event a deferred job completed that is too long to record.
fn oversize(e: &LedgerError) {
    tracing::error!(target: "aigis::security", error = %e, "audit record dropped: too long to record");
}

/// The events of the writer's current batch, in log order. [`Batch::push_ref`] encodes into
/// the buffers of an event of an earlier batch: under steady load no event buffer is
/// allocated, and encodings land on pages already mapped (the encoded events' fresh
/// allocations were 38% of the writer's page faults in session 16, `docs/BENCHMARKS.md`).
#[derive(Default)]
pub struct Batch {
    events: Vec<Encoded>,
    /// Committed events, their buffers to be reused.
    spare: Vec<Encoded>,
}

impl Batch {
    /// Makes room for `additional` more events.
    pub fn reserve(&mut self, additional: usize) {
        self.events.reserve(additional);
    }

    /// Adds an encoded event; one too long to record ([`Encoded::check_len`]) is dropped
    /// instead, with an error on `aigis::security`.
    ///
    /// Why dropped, not refused: a deferred job runs on the writer thread, inside a batch that
    /// holds other callers' events, after the caller that queued it was answered. There is
    /// nobody to return an error to, and failing the job or the batch would lose or spool
    /// every other event with it (and a spooled oversize event stops the spool's drain). So
    /// the one event is left out and named in the log, and the rest of the batch commits.
    pub fn push(&mut self, event: Encoded) {
        if let Err(e) = event.check_len() {
            oversize(&e);
            return;
        }
        self.events.push(event);
    }

    /// Adds `event`, encoded as [`Encoded::from_ref`] encodes it; one too long to record is
    /// dropped, as in [`Batch::push`].
    pub fn push_ref(&mut self, event: &EventRef<'_>) {
        let encoded = match self.spare.pop() {
            Some(mut spare) => {
                spare.refill(event);
                spare
            }
            None => Encoded::from_ref(event),
        };
        self.push(encoded);
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Empties the batch, keeping its events' buffers for the next one (within the bounds
    /// above).
    fn recycle(&mut self) {
        let room = SPARE_EVENTS.saturating_sub(self.spare.len());
        let keep = self
            .events
            .drain(..)
            .filter(|e| e.capacity() <= SPARE_EVENT_BYTES)
            .take(room);
        self.spare.extend(keep);
    }
}

enum Job {
    Append(Encoded, Option<AckSender>),
    Deferred(Deferred),
    Checkpoint(oneshot::Sender<Result<Option<StoredCheckpoint>, LedgerError>>),
    Close,
}

struct Shared {
    permits: Arc<Semaphore>,
    healthy: AtomicBool,
    size: AtomicU64,
    appended: AtomicU64,
    /// Turns of the writer's loop (tests check that an idle writer sleeps).
    wakeups: AtomicU64,
    /// When the writer's work on the current batch started, in milliseconds since `epoch`
    /// plus one; 0 while it waits for jobs.
    busy_since: AtomicU64,
    epoch: Instant,
    /// [`WriterConfig::stall`] in milliseconds.
    stall_ms: u64,
    /// A stall was seen and logged, and the writer has not returned since.
    stalled: AtomicBool,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the writer's current work has run longer than the stall bound (logged once).
    fn stalled(&self) -> bool {
        let since = self.busy_since.load(Ordering::Relaxed);
        if since == 0 || self.now_ms().saturating_add(1).saturating_sub(since) <= self.stall_ms {
            return false;
        }
        if !self.stalled.swap(true, Ordering::Relaxed) {
            tracing::error!(target: "aigis::security", after_ms = self.stall_ms, "ledger store stopped answering; refusing traffic (fail-closed) until it does");
        }
        true
    }

    /// Runs some of the writer's work, marked as such for [`Shared::stalled`]. Work that
    /// returns is progress: the work it is part of (a batch; a drain of the spool that commits
    /// batch after batch) counts on from then.
    fn busy<T>(&self, work: impl FnOnce() -> T) -> T {
        let outer = self
            .busy_since
            .swap(self.now_ms().saturating_add(1), Ordering::Relaxed);
        let done = work();
        let since = if outer == 0 {
            0
        } else {
            self.now_ms().saturating_add(1)
        };
        self.busy_since.store(since, Ordering::Relaxed);
        if self.stalled.swap(false, Ordering::Relaxed) {
            tracing::info!(target: "aigis::security", "ledger store answered again");
        }
        done
    }
}

/// The writer's store, each operation watched by [`Shared::busy`].
struct Watched {
    store: Box<dyn Appender>,
    shared: Arc<Shared>,
}

impl Appender for Watched {
    fn append(&mut self, events: &mut [Encoded], tree: &mut Tree) -> Result<(), LedgerError> {
        self.shared.busy(|| self.store.append(events, tree))
    }
    fn append_marked(
        &mut self,
        events: &mut [Encoded],
        tree: &mut Tree,
        mark: Option<&SpoolMark<'_>>,
    ) -> Result<(), LedgerError> {
        self.shared
            .busy(|| self.store.append_marked(events, tree, mark))
    }
    fn drained(&mut self, spool: &str) -> Result<u64, LedgerError> {
        self.shared.busy(|| self.store.drained(spool))
    }
    fn load_tree(&mut self) -> Result<Tree, LedgerError> {
        self.shared.busy(|| self.store.load_tree())
    }
    fn put_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<(), LedgerError> {
        self.shared.busy(|| self.store.put_checkpoint(cp))
    }
    fn latest_checkpoint(&mut self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        self.shared.busy(|| self.store.latest_checkpoint())
    }
}

/// A running ledger: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("size", &self.size())
            .field("healthy", &self.healthy())
            .finish_non_exhaustive()
    }
}

struct Writer {
    store: Box<dyn Appender>,
    keys: Arc<LedgerKeys>,
    tree: Tree,
    spool: Option<Spool>,
    config: WriterConfig,
    shared: Arc<Shared>,
    last_checkpoint: u64,
    last_checkpoint_at: Instant,
    /// Emptied after each commit; kept for its events' buffers.
    batch: Batch,
    /// Queued events (no caller waits for them) that neither the store nor the spool took,
    /// oldest first: they go first into the next batch, which the writer tries while the
    /// ledger refuses traffic, so the records of requests already answered are kept, not
    /// dropped. At most [`MAX_HELD`].
    held: Vec<Encoded>,
}

/// Most refused events [`Writer::held`] keeps: the queue's default capacity. Requests stop
/// being admitted once the ledger fails, so only those already in flight add to it; past this
/// bound the newest are dropped, with their number on `aigis::security`.
const MAX_HELD: usize = 65_536;

impl Ledger {
    /// Starts the writer thread over `store`, signing with `keys`. A spool, when given,
    /// takes batches the store refuses.
    pub fn start(
        mut store: Box<dyn Appender>,
        keys: Arc<LedgerKeys>,
        spool: Option<Spool>,
        config: WriterConfig,
    ) -> Result<Self, LedgerError> {
        let tree = store.load_tree()?;
        let last_checkpoint = store.latest_checkpoint()?.map_or(0, |c| c.size);
        let queue = config.queue.clamp(1, Semaphore::MAX_PERMITS);
        let shared = Arc::new(Shared {
            permits: Arc::new(Semaphore::new(queue)),
            healthy: AtomicBool::new(true),
            size: AtomicU64::new(tree.size()),
            appended: AtomicU64::new(0),
            wakeups: AtomicU64::new(0),
            busy_since: AtomicU64::new(0),
            epoch: Instant::now(),
            stall_ms: u64::try_from(config.stall.as_millis()).unwrap_or(u64::MAX),
            stalled: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel();
        let mut writer = Writer {
            store: Box::new(Watched {
                store,
                shared: shared.clone(),
            }),
            keys,
            tree,
            spool,
            config,
            shared: shared.clone(),
            last_checkpoint,
            last_checkpoint_at: Instant::now(),
            batch: Batch::default(),
            held: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("aigis-ledger".into())
            .spawn(move || writer.run(&rx))
            .map_err(|e| LedgerError::Io {
                path: "ledger writer thread".into(),
                message: e.to_string(),
            })?;
        Ok(Self {
            tx,
            shared,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Whether the store (or the spool) accepts records, and the writer's work on its current
    /// batch has not outlasted [`WriterConfig::stall`]. When false, the gateway refuses
    /// traffic (fail-closed).
    pub fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed) && !self.shared.stalled()
    }

    /// Entries committed to the store.
    pub fn size(&self) -> u64 {
        self.shared.size.load(Ordering::Relaxed)
    }

    /// Turns of the writer thread's loop so far.
    #[cfg(feature = "test-util")]
    pub fn wakeups(&self) -> u64 {
        self.shared.wakeups.load(Ordering::Relaxed)
    }

    /// Free queue slots.
    pub fn queue_free(&self) -> usize {
        self.shared.permits.available_permits()
    }

    /// Queues `event` without waiting for durability, waiting for queue space if the
    /// queue is full (back-pressure). An [`Event`] is encoded here, on the caller's thread.
    /// An event too long to record is refused ([`LedgerError::EventTooLong`]), before it takes
    /// a queue slot: nothing else is affected.
    pub async fn enqueue(&self, event: impl Into<Encoded>) -> Result<(), LedgerError> {
        let encoded = event.into();
        encoded.check_len()?;
        self.acquire().await?;
        self.send(Job::Append(encoded, None))
    }

    /// Queues a job that the writer thread runs in its batch, just before committing: it pushes
    /// the events it completes and encodes (any number: the caller may gather records itself
    /// and queue one job for them), waiting for queue space if the queue is full. For a caller
    /// on a busy thread whose events still need work (the gateway's digests of requests'
    /// content): done in batches, that work runs with its code and data in cache, instead of
    /// interleaved with serving requests, where it evicted theirs. An event the job completes
    /// that is too long to record is left out of the batch, with an error log
    /// ([`Batch::push`]).
    pub async fn enqueue_deferred(&self, complete: Deferred) -> Result<(), LedgerError> {
        self.acquire().await?;
        self.send(Job::Deferred(complete))
    }

    /// Queues `event` if there is space right now (refusing one too long to record, as
    /// [`Ledger::enqueue`]).
    pub fn try_enqueue(&self, event: Event) -> Result<(), LedgerError> {
        let encoded = Encoded::new(event);
        encoded.check_len()?;
        let permit = self
            .shared
            .permits
            .try_acquire()
            .map_err(|_| LedgerError::Unavailable("is full"))?;
        permit.forget();
        self.send(Job::Append(encoded, None))
    }

    /// Appends `event` and waits until it is durable (committed or spooled); refuses one too
    /// long to record, as [`Ledger::enqueue`].
    pub async fn append(&self, event: Event) -> Result<Ack, LedgerError> {
        let encoded = Encoded::new(event);
        encoded.check_len()?;
        self.acquire().await?;
        let (ack, rx) = oneshot::channel();
        self.send(Job::Append(encoded, Some(ack)))?;
        rx.await
            .map_err(|_| LedgerError::Unavailable("writer stopped"))?
    }

    /// Commits what is queued and signs a checkpoint now (if the log grew).
    pub async fn checkpoint(&self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Job::Checkpoint(ack))
            .map_err(|_| LedgerError::Unavailable("writer stopped"))?;
        rx.await
            .map_err(|_| LedgerError::Unavailable("writer stopped"))?
    }

    /// Stops accepting, commits everything queued, signs a final checkpoint and waits for
    /// the writer thread. Every clone stops accepting.
    pub fn close(&self) {
        self.shared.permits.close();
        let _ = self.tx.send(Job::Close);
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    async fn acquire(&self) -> Result<(), LedgerError> {
        let permit = self
            .shared
            .permits
            .acquire()
            .await
            .map_err(|_| LedgerError::Unavailable("is closed"))?;
        permit.forget();
        Ok(())
    }

    fn send(&self, job: Job) -> Result<(), LedgerError> {
        self.shared.appended.fetch_add(1, Ordering::Relaxed);
        self.tx.send(job).map_err(|_| {
            // The writer thread is gone (closed, or died): nothing queued would be made
            // durable, so the ledger fails closed instead of letting traffic go unrecorded.
            if self.shared.healthy.swap(false, Ordering::Relaxed) {
                tracing::error!(target: "aigis::security", "ledger writer stopped; refusing traffic (fail-closed)");
            }
            LedgerError::Unavailable("writer stopped")
        })
    }
}

impl Writer {
    fn run(&mut self, rx: &mpsc::Receiver<Job>) {
        let mut last_batch = Instant::now();
        let shared = self.shared.clone();
        loop {
            if let Some(rest) = self.config.linger.checked_sub(last_batch.elapsed()) {
                std::thread::sleep(rest);
            }
            let received = if self.idle() {
                // Nothing to sign, drain or probe: sleep until the next job, not a timer.
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                let wait = self
                    .config
                    .checkpoint_every
                    .saturating_sub(self.last_checkpoint_at.elapsed())
                    .max(Duration::from_millis(1));
                rx.recv_timeout(wait)
            };
            self.shared.wakeups.fetch_add(1, Ordering::Relaxed);
            let first = match received {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut jobs: Vec<Job> = first.into_iter().collect();
            while jobs.len() < self.config.max_batch {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            if !jobs.is_empty() {
                last_batch = Instant::now();
            }
            let closing = jobs.iter().any(|j| matches!(j, Job::Close));
            let taken = jobs
                .iter()
                .filter(|j| matches!(j, Job::Append(..) | Job::Deferred(_)))
                .count();
            self.shared.permits.add_permits(taken);
            shared.busy(|| self.process(jobs));
            if closing {
                // Jobs sent before Close were ahead of it in the channel; take any stragglers.
                let rest: Vec<Job> = rx.try_iter().collect();
                shared.busy(|| self.process(rest));
                break;
            }
        }
        let _ = self.drain_spool();
        if !self.held.is_empty() {
            // One last try: the store may be back.
            self.process(Vec::new());
        }
        if !self.held.is_empty() {
            tracing::error!(target: "aigis::security", lost = self.held.len(), "ledger closed with records neither the store nor the spool took: they are lost");
        }
        let _ = self.checkpoint(true);
    }

    /// Whether the writer has nothing to do until a job arrives: every entry is under a signed
    /// checkpoint, the spool is empty and the store is healthy (a failed store is probed, and a
    /// spool drained, on the writer's next wake-up, so those keep a timer).
    fn idle(&self) -> bool {
        self.held.is_empty()
            && self.tree.size() == self.last_checkpoint
            && self.shared.healthy.load(Ordering::Relaxed)
            && self.spool.as_ref().is_none_or(Spool::is_empty)
    }

    fn process(&mut self, jobs: Vec<Job>) {
        let mut batch = std::mem::take(&mut self.batch);
        batch.reserve(jobs.len() + self.held.len());
        let mut acks = Vec::with_capacity(jobs.len() + self.held.len());
        // Events refused before go first, keeping log order.
        acks.resize_with(self.held.len(), || None);
        batch.events.append(&mut self.held);
        let mut checkpoint_requests = Vec::new();
        for job in jobs {
            match job {
                Job::Append(e, ack) => {
                    // Checked when queued; pushed as is, so `acks` stays in step with it.
                    batch.events.push(e);
                    acks.push(ack);
                }
                Job::Deferred(complete) => {
                    complete(&mut batch);
                    acks.resize_with(batch.len(), || None);
                }
                Job::Checkpoint(ack) => checkpoint_requests.push(ack),
                Job::Close => {}
            }
        }
        if self.spool.as_ref().is_some_and(|s| !s.is_empty()) {
            let _ = self.drain_spool();
        } else if !self.shared.healthy.load(Ordering::Relaxed) {
            // Failed closed: probe the store (an empty transaction) before a batch is tried on
            // it again, so a store that stays down costs one cheap probe per turn, not the
            // held batch retried and its error logged.
            if self.store.append(&mut [], &mut self.tree).is_ok() {
                tracing::info!(target: "aigis::security", "ledger store is back; accepting traffic");
                self.shared.healthy.store(true, Ordering::Relaxed);
            }
        }
        if !batch.is_empty() {
            let result = if self.shared.healthy.load(Ordering::Relaxed) {
                self.commit(&mut batch.events)
            } else {
                Err(LedgerError::FailClosed("the store is still down".into()))
            };
            if let Err(e) = &result {
                // A caller that waits is told; the others' events are held and tried again.
                for (ack, event) in acks.into_iter().zip(batch.events.drain(..)) {
                    match ack {
                        Some(ack) => drop(ack.send(Err(e.clone()))),
                        None => self.held.push(event),
                    }
                }
                if self.held.len() > MAX_HELD {
                    let dropped = self.held.len() - MAX_HELD;
                    self.held.truncate(MAX_HELD);
                    tracing::error!(target: "aigis::security", dropped, held = MAX_HELD, "ledger store and spool still failing: audit records beyond the held bound were dropped");
                }
            } else {
                for (ack, e) in acks.into_iter().zip(&batch.events) {
                    if let Some(ack) = ack {
                        let _ = ack.send(result.clone().map(|spooled| {
                            if spooled {
                                Ack::Spooled
                            } else {
                                Ack::Stored(e.index)
                            }
                        }));
                    }
                }
            }
        }
        batch.recycle();
        self.batch = batch;
        let forced = !checkpoint_requests.is_empty();
        let cp = self.checkpoint(forced);
        for ack in checkpoint_requests {
            let _ = ack.send(cp.clone());
        }
    }

    /// Commits a batch to the store, or spools it; returns whether it was spooled.
    fn commit(&mut self, events: &mut [Encoded]) -> Result<bool, LedgerError> {
        let spool_pending = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        let stored = if spool_pending {
            // Keep order: while older events wait in the spool, newer ones queue behind them.
            Err(LedgerError::Unavailable("spool not yet drained"))
        } else {
            self.store.append(events, &mut self.tree)
        };
        match stored {
            Ok(()) => {
                self.shared.size.store(self.tree.size(), Ordering::Relaxed);
                self.shared.healthy.store(true, Ordering::Relaxed);
                Ok(false)
            }
            Err(store_err) => {
                let Some(spool) = self.spool.as_mut() else {
                    tracing::error!(target: "aigis::security", error = %store_err, "ledger store failed; refusing traffic (fail-closed)");
                    self.shared.healthy.store(false, Ordering::Relaxed);
                    return Err(LedgerError::FailClosed(store_err.to_string()));
                };
                match spool.push(events) {
                    Ok(()) => {
                        tracing::warn!(target: "aigis::security", error = %store_err, spooled_bytes = spool.len(), "ledger store failed; spooling");
                        Ok(true)
                    }
                    Err(e) => {
                        tracing::error!(target: "aigis::security", error = %e, "ledger spool refused the batch (full or failing); refusing traffic (fail-closed)");
                        self.shared.healthy.store(false, Ordering::Relaxed);
                        Err(e)
                    }
                }
            }
        }
    }

    /// Moves spooled events into the store (oldest first), then empties the spool.
    fn drain_spool(&mut self) -> Result<(), LedgerError> {
        let Some(spool) = self.spool.as_mut() else {
            return Ok(());
        };
        if spool.is_empty() {
            return Ok(());
        }
        let drained = spool.drain(self.store.as_mut(), &mut self.tree, self.config.max_batch)?;
        self.shared.size.store(self.tree.size(), Ordering::Relaxed);
        self.shared.healthy.store(true, Ordering::Relaxed);
        tracing::info!(target: "aigis::security", drained, "ledger spool drained into the store");
        Ok(())
    }

    fn checkpoint(&mut self, force: bool) -> Result<Option<StoredCheckpoint>, LedgerError> {
        let size = self.tree.size();
        let due = force || self.last_checkpoint_at.elapsed() >= self.config.checkpoint_every;
        if size == self.last_checkpoint || !due {
            return Ok(None);
        }
        let cp = Checkpoint {
            origin: self.keys.origin().to_owned(),
            size,
            root: self.tree.root(),
        };
        let time_ms = now_ms();
        let note = cp
            .sign(&[self.keys.log(), self.keys.cosigner()], time_ms / 1000)
            .map_err(|e| LedgerError::Key {
                what: e.to_string(),
            })?;
        let stored = StoredCheckpoint {
            size,
            time_ms,
            note,
        };
        self.store.put_checkpoint(&stored)?;
        self.last_checkpoint = size;
        self.last_checkpoint_at = Instant::now();
        Ok(Some(stored))
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, SPARE_EVENT_BYTES};
    use crate::event::{Encoded, EventKind, EventRef};

    #[test]
    fn batch_reuses_committed_events_and_encodes_as_from_ref() {
        let detail = "d".repeat(300);
        let oversized = "x".repeat(SPARE_EVENT_BYTES);
        let event = |id: &'static str, detail: Option<&'static str>| {
            let mut e = EventRef::new(EventKind::AiCall, id, "chat.completions", 7);
            e.detail = detail;
            e
        };
        // Leaked for 'static: a test's few bytes.
        let (detail, oversized): (&'static str, &'static str) = (detail.leak(), oversized.leak());
        let mut batch = Batch::default();
        batch.push_ref(&event("long-request-id", Some(detail)));
        batch.push_ref(&event("b", None));
        batch.push_ref(&event("c", Some(oversized)));
        batch.recycle();
        assert!(batch.is_empty());
        assert_eq!(
            batch.spare.len(),
            2,
            "an oversized event is freed, not kept"
        );
        // Each reused buffer held something else before: nothing of it may remain.
        for e in [
            event("x", None),
            event("another-id", Some(detail)),
            event("y", None),
        ] {
            batch.push_ref(&e);
            let last = batch.events.last().map(Encoded::canonical);
            assert_eq!(last, Some(Encoded::from_ref(&e).canonical()));
        }
        assert!(batch.spare.is_empty(), "two reused, the third allocated");
        assert_eq!(batch.len(), 3);
    }
}
