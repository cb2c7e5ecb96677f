//! The bare-tonic baseline server: `bench.v1.RefundBench` on tonic 0.14 with nothing behind
//! it, so that the suite can set the gateway's figures against what tonic, hyper, h2 and
//! prost alone reach on the same machine in the same run.
//!
//! `CreateRefund` answers with a Refund made from the request (no I/O). `WatchRefunds` gives
//! each stream its own receiver of one `tokio::sync::broadcast` channel; `Publish` sends
//! events into it, stamped with the wall clock just before the send; `Stats` reports counters
//! and the process's own RSS and CPU time. Prints a `listening` line on stderr once bound;
//! stops on SIGINT.
//!
//! ```text
//! baseline_server [--addr 127.0.0.1:50051] [--broadcast-capacity 1024]
//!                 [--max-concurrent-streams N] [--runtime multi|current] [--workers N]
//! ```

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use futures::Stream;
use prost::bytes::Bytes;
use refund_gateway_bench::{
    Args,
    baseline::{
        pb::{
            CreateRefundRequest, PublishRequest, PublishResponse, Refund, RefundEvent,
            RefundStatus, StatsRequest, StatsResponse, WatchRefundsRequest,
            refund_bench_server::{RefundBench, RefundBenchServer},
        },
        runtime,
    },
    cpu_micros, rss_bytes, unix_nanos,
};
use tokio::sync::broadcast::{self, error::RecvError};
use tonic::{Request, Response, Status};

struct Bench {
    events: broadcast::Sender<RefundEvent>,
    unary_requests: AtomicU64,
    next_seq: AtomicU64,
    published: AtomicU64,
    open_streams: Arc<AtomicU64>,
    lagged: Arc<AtomicU64>,
}

/// Counts one open stream for as long as its response stream lives.
struct OpenStream(Arc<AtomicU64>);

impl OpenStream {
    fn new(count: Arc<AtomicU64>) -> Self {
        count.fetch_add(1, Relaxed);
        Self(count)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<RefundEvent, Status>> + Send>>;

#[tonic::async_trait]
impl RefundBench for Bench {
    async fn create_refund(
        &self,
        request: Request<CreateRefundRequest>,
    ) -> Result<Response<Refund>, Status> {
        let r = request.into_inner();
        let n = self.unary_requests.fetch_add(1, Relaxed);
        if r.amount_minor <= 0 {
            return Err(Status::invalid_argument("amount_minor must be positive"));
        }
        Ok(Response::new(Refund {
            refund_id: format!("rfnd_{n:016x}"),
            payment_id: r.payment_id,
            amount_minor: r.amount_minor,
            currency: r.currency,
            status: RefundStatus::Pending as i32,
            reason: r.reason,
            merchant_id: r.merchant_id,
            created_at_unix_ms: unix_nanos() / 1_000_000,
        }))
    }

    type WatchRefundsStream = EventStream;

    async fn watch_refunds(
        &self,
        _request: Request<WatchRefundsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let state = (
            self.events.subscribe(),
            OpenStream::new(self.open_streams.clone()),
            self.lagged.clone(),
        );
        // Ends when the channel closes (server shutdown); a stream that fell more than the
        // channel's capacity behind skips what it missed and counts it.
        let stream = futures::stream::unfold(state, |(mut rx, open, lagged)| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((Ok(event), (rx, open, lagged))),
                    Err(RecvError::Lagged(n)) => {
                        lagged.fetch_add(n, Relaxed);
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let r = request.into_inner();
        let count = u64::from(r.count.max(1));
        let padding = Bytes::from(vec![0x5a; r.payload_bytes as usize]);
        let first_seq = self.next_seq.fetch_add(count, Relaxed);
        let mut receivers = 0;
        for seq in first_seq..first_seq + count {
            let event = RefundEvent {
                seq,
                refund_id: format!("rfnd_{seq:016x}"),
                status: RefundStatus::Succeeded as i32,
                published_at_unix_nanos: unix_nanos(),
                padding: padding.clone(),
            };
            // Err only when no stream is open: then nobody receives it.
            receivers = self.events.send(event).unwrap_or(0) as u64;
        }
        self.published.fetch_add(count, Relaxed);
        Ok(Response::new(PublishResponse {
            first_seq,
            receivers,
        }))
    }

    async fn stats(
        &self,
        _request: Request<StatsRequest>,
    ) -> Result<Response<StatsResponse>, Status> {
        Ok(Response::new(StatsResponse {
            unary_requests: self.unary_requests.load(Relaxed),
            active_streams: self.open_streams.load(Relaxed),
            rss_bytes: rss_bytes(None),
            events_published: self.published.load(Relaxed),
            events_lagged: self.lagged.load(Relaxed),
            cpu_micros: cpu_micros(None),
        }))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let addr: SocketAddr = args.str("addr", "127.0.0.1:50051").parse()?;
    let capacity: usize = args.get("broadcast-capacity", 1024);
    let max_streams: Option<u32> = args
        .opt("max-concurrent-streams")
        .map(|s| s.parse())
        .transpose()?;
    runtime(&args)?.block_on(async move {
        let (events, _) = broadcast::channel(capacity);
        let bench = Bench {
            events,
            unary_requests: AtomicU64::new(0),
            next_seq: AtomicU64::new(0),
            published: AtomicU64::new(0),
            open_streams: Arc::new(AtomicU64::new(0)),
            lagged: Arc::new(AtomicU64::new(0)),
        };
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!(
            "baseline server pid={} listening on {addr} (workers={}, broadcast capacity={capacity}, rss={} KiB)",
            std::process::id(),
            tokio::runtime::Handle::current().metrics().num_workers(),
            rss_bytes(None) / 1024
        );
        tonic::transport::Server::builder()
            .max_concurrent_streams(max_streams)
            .add_service(RefundBenchServer::new(bench))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async {
                    let _ = tokio::signal::ctrl_c().await;
                },
            )
            .await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
