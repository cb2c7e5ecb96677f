//! The live event bus: every stored refund change reaches every subscriber, in sequence
//! order, with no gap and no duplicate; the store stays the truth.
//!
//! Writers publish an event after its transaction commits. Publishes from concurrent writers
//! can arrive out of order, and a writer can stop between its commit and its publish, so a
//! single sequencer task puts them back in order before broadcasting: it holds early events
//! briefly, fills any gap from the store, and also polls the store's last sequence so an
//! event whose publish never came is still delivered. Subscribers therefore see one globally
//! ordered stream. When several gateway processes share one store (PostgreSQL), the store
//! wakes the sequencer for events other processes committed (`LISTEN/NOTIFY`), and the
//! sequencer reads them from the store, which stays the truth. A subscriber that falls more than [`CAPACITY`] events behind gets `Lagged`
//! from the broadcast channel and must catch up from the store (see `refunds::watch`): slow
//! readers never slow writers or other readers, and nobody silently skips an event.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::RefundEvent,
    store::{EventScope, RefundStore},
};

/// How many events the broadcast channel keeps for slow subscribers before they lag, unless
/// configured otherwise (`server.event_buffer`).
pub const CAPACITY: usize = 4096;

/// How long the sequencer waits for a missing publish before reading the store.
const GAP_WAIT: Duration = Duration::from_millis(20);

/// How often the sequencer checks the store for events nobody published.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Handle to publish and subscribe; cheap to clone.
#[derive(Clone, Debug)]
pub struct EventBus {
    publish: mpsc::UnboundedSender<Arc<RefundEvent>>,
    broadcast: broadcast::Sender<Arc<RefundEvent>>,
    /// The last sequence broadcast.
    head: Arc<AtomicU64>,
}

impl EventBus {
    /// Starts the sequencer. It stops when `shutdown` is cancelled.
    pub async fn start(
        store: Arc<dyn RefundStore>,
        capacity: usize,
        shutdown: CancellationToken,
    ) -> Result<Self, crate::store::StoreError> {
        let last = store.last_sequence().await?;
        let wakeups = store.commit_wakeups(shutdown.clone()).await?;
        let (publish, rx) = mpsc::unbounded_channel();
        let (broadcast, _) = broadcast::channel(capacity.max(1));
        let head = Arc::new(AtomicU64::new(last));
        let sequencer = Sequencer {
            store,
            next: last + 1,
            held: BTreeMap::new(),
            out: broadcast.clone(),
            head: head.clone(),
        };
        tokio::spawn(sequencer.run(rx, wakeups, shutdown));
        Ok(Self {
            publish,
            broadcast,
            head,
        })
    }

    /// Hands a committed event to the sequencer. Never blocks.
    pub fn publish(&self, event: RefundEvent) {
        // The sequencer only stops at shutdown; the store has the event either way.
        let _ = self.publish.send(Arc::new(event));
    }

    /// A receiver of every event broadcast from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RefundEvent>> {
        self.broadcast.subscribe()
    }

    /// The last sequence broadcast so far.
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }
}

struct Sequencer {
    store: Arc<dyn RefundStore>,
    /// The sequence to broadcast next.
    next: u64,
    /// Events that arrived before their predecessors.
    held: BTreeMap<u64, Arc<RefundEvent>>,
    out: broadcast::Sender<Arc<RefundEvent>>,
    head: Arc<AtomicU64>,
}

impl Sequencer {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Arc<RefundEvent>>,
        mut wakeups: Option<mpsc::Receiver<()>>,
        shutdown: CancellationToken,
    ) {
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let gap_deadline = if self.held.is_empty() {
                None
            } else {
                Some(tokio::time::sleep(GAP_WAIT))
            };
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                received = rx.recv() => match received {
                    Some(event) => self.accept(event),
                    None => return,
                },
                () = async { gap_deadline.expect("guarded").await }, if gap_deadline.is_some() => {
                    self.fill_from_store().await;
                }
                // Another process sharing the store committed events.
                Some(()) = async {
                    match wakeups.as_mut() {
                        Some(w) => w.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.fill_from_store().await;
                }
                _ = poll.tick() => {
                    if let Ok(last) = self.store.last_sequence().await
                        && last >= self.next
                    {
                        self.fill_from_store().await;
                    }
                }
            }
        }
    }

    fn accept(&mut self, event: Arc<RefundEvent>) {
        if event.sequence < self.next {
            return; // already broadcast (filled from the store earlier)
        }
        self.held.insert(event.sequence, event);
        self.drain_in_order();
    }

    fn drain_in_order(&mut self) {
        while let Some(event) = self.held.remove(&self.next) {
            self.emit(event);
        }
    }

    fn emit(&mut self, event: Arc<RefundEvent>) {
        self.next = event.sequence + 1;
        self.head.store(event.sequence, Ordering::Release);
        // No receivers is fine: nobody is watching.
        let _ = self.out.send(event);
    }

    /// Reads everything from `next` on from the store and broadcasts it in order, then what
    /// was held beyond it.
    async fn fill_from_store(&mut self) {
        loop {
            let batch = match self
                .store
                .events_after(&EventScope::All, self.next - 1, 1000)
                .await
            {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, "event sequencer could not read the store; retrying");
                    return;
                }
            };
            let full = batch.len() == 1000;
            for event in batch {
                if event.sequence >= self.next {
                    self.held.remove(&event.sequence);
                    self.emit(Arc::new(event));
                }
            }
            if !full {
                break;
            }
        }
        // Whatever is still held lies beyond a hole the store does not have (a rolled-back
        // sequence): skip to it rather than wait forever.
        if let Some((&first, _)) = self.held.first_key_value() {
            self.next = first;
            self.drain_in_order();
        }
    }
}
