//! The crash test's side of the gRPC API: a client that repeats every call a kill cut off
//! under the same `request_id`, a live `WatchRefunds` subscriber that resumes after every
//! death from the last sequence it saw, and reads of the gateway's records.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use refund_gateway::pb::{self, refund_service_client::RefundServiceClient};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt as _;

use crate::{API_KEY, workload::Spec};

pub type Client = RefundServiceClient<Channel>;

/// How long one CreateRefund may take to be answered, across every death and restart.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(90);

/// A client of `url` that connects when first used and again after each death.
pub fn connect(url: &str) -> Client {
    let channel = Channel::from_shared(url.to_owned())
        .expect("a URL")
        .connect_timeout(Duration::from_millis(500))
        .connect_lazy();
    RefundServiceClient::new(channel)
}

pub fn authed<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {API_KEY}").parse().expect("ascii"),
    );
    request
}

/// A definitive answer to a CreateRefund.
#[derive(Clone, Debug)]
pub enum Answer {
    Refund(Box<pb::Refund>),
    Error { code: Code, reason: String },
}

impl Answer {
    /// What every repeat must give again: the refund's id, or the error's code and reason.
    pub fn identity(&self) -> String {
        match self {
            Self::Refund(r) => format!("refund {}", r.id),
            Self::Error { code, reason } => format!("error {code:?} {reason}"),
        }
    }
}

fn reason_of(status: &Status) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
}

/// Gateway errors a client repeats: the first call is still in progress, or something was
/// not reachable for a moment (the key does not remember these, so a repeat tries again).
const REPEATABLE: [&str; 5] = [
    "REQUEST_IN_PROGRESS",
    "STORE_UNAVAILABLE",
    "SHUTTING_DOWN",
    "PROVIDER_UNAVAILABLE",
    "PROVIDER_BAD_RESPONSE",
];

#[derive(Debug, Default)]
pub struct ClientStats {
    pub in_flight: AtomicUsize,
    pub calls: AtomicUsize,
    /// Calls no gateway answered (it died during the call, or was not up yet).
    pub cut_off: AtomicUsize,
    /// Repeatable gateway errors (REQUEST_IN_PROGRESS, ...).
    pub repeatable: AtomicUsize,
}

/// Calls CreateRefund until a gateway answers it, repeating it with the same `request_id`
/// after every connection error, as a client does.
pub async fn answer(client: &Client, spec: &Spec, stats: &ClientStats) -> Answer {
    let started = Instant::now();
    let mut repeatable = 0;
    loop {
        stats.in_flight.fetch_add(1, SeqCst);
        stats.calls.fetch_add(1, SeqCst);
        let mut request = authed(spec.request());
        request.set_timeout(Duration::from_secs(20));
        let result = client.clone().create_refund(request).await;
        stats.in_flight.fetch_sub(1, SeqCst);
        let status = match result {
            Ok(response) => {
                return Answer::Refund(Box::new(response.into_inner().refund.expect("a refund")));
            }
            Err(status) => status,
        };
        match reason_of(&status) {
            // No ErrorInfo: the gateway did not answer (every gateway error carries one).
            None => {
                stats.cut_off.fetch_add(1, SeqCst);
            }
            Some(reason) if REPEATABLE.contains(&reason.as_str()) => {
                stats.repeatable.fetch_add(1, SeqCst);
                repeatable += 1;
                if repeatable >= 10 {
                    return Answer::Error {
                        code: status.code(),
                        reason,
                    };
                }
            }
            Some(reason) => {
                return Answer::Error {
                    code: status.code(),
                    reason,
                };
            }
        }
        assert!(
            started.elapsed() < ANSWER_DEADLINE,
            "{} was not answered in {ANSWER_DEADLINE:?}: {status:?}",
            spec.request_id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every answer each `request_id` got, in order.
pub type Answers = Arc<Mutex<BTreeMap<String, Vec<Answer>>>>;

/// One client worker: takes requests off the queue until it is empty, each after a pause.
pub async fn worker(
    client: Client,
    queue: Arc<Mutex<VecDeque<Spec>>>,
    answers: Answers,
    stats: Arc<ClientStats>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let Some(spec) = queue.lock().unwrap().pop_front() else {
            return;
        };
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..700))).await;
        let got = if spec.doubled {
            let (a, b) = tokio::join!(
                answer(&client, &spec, &stats),
                answer(&client, &spec, &stats)
            );
            vec![a, b]
        } else {
            vec![answer(&client, &spec, &stats).await]
        };
        answers
            .lock()
            .unwrap()
            .entry(spec.request_id.clone())
            .or_default()
            .extend(got);
    }
}

/// A live WatchRefunds subscriber: from the start, and after every death from the last
/// sequence it saw, until `stop`.
pub async fn watch(client: Client, seen: Arc<Mutex<Vec<pb::RefundEvent>>>, stop: Arc<AtomicBool>) {
    let mut last = 0;
    while !stop.load(SeqCst) {
        let stream = client
            .clone()
            .watch_refunds(authed(pb::WatchRefundsRequest {
                after_sequence: Some(last),
                ..Default::default()
            }))
            .await;
        let Ok(stream) = stream else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut stream = stream.into_inner();
        loop {
            match tokio::time::timeout(Duration::from_millis(200), stream.message()).await {
                Ok(Ok(Some(message))) => {
                    let event = message.event.expect("an event");
                    last = event.sequence;
                    seen.lock().unwrap().push(event);
                }
                Ok(Ok(None) | Err(_)) => break,
                Err(_) if stop.load(SeqCst) => return,
                Err(_) => {}
            }
        }
    }
}

/// Every refund of the tenant, by id.
pub async fn all_refunds(client: &Client) -> BTreeMap<String, pb::Refund> {
    let mut out = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .clone()
            .list_refunds(authed(pb::ListRefundsRequest {
                page_size: 500,
                page_token: page_token.clone(),
                ..Default::default()
            }))
            .await
            .expect("ListRefunds")
            .into_inner();
        for refund in page.refunds {
            out.insert(refund.id.clone(), refund);
        }
        if page.next_page_token.is_empty() {
            return out;
        }
        page_token = page.next_page_token;
    }
}

/// How many refunds have `status` now (`None`: the gateway did not answer).
pub async fn count_with_status(client: &Client, status: pb::RefundStatus) -> Option<usize> {
    let page = client
        .clone()
        .list_refunds(authed(pb::ListRefundsRequest {
            page_size: 500,
            status: status.into(),
            ..Default::default()
        }))
        .await
        .ok()?;
    Some(page.into_inner().refunds.len())
}

/// The stored feed from the beginning, read until it has been quiet for 1.5 s.
pub async fn stored_feed(client: &Client) -> Vec<pb::RefundEvent> {
    let mut stream = client
        .clone()
        .watch_refunds(authed(pb::WatchRefundsRequest {
            after_sequence: Some(0),
            ..Default::default()
        }))
        .await
        .expect("WatchRefunds")
        .into_inner();
    let mut events = Vec::new();
    while let Ok(message) =
        tokio::time::timeout(Duration::from_millis(1500), stream.message()).await
    {
        match message.expect("the feed") {
            Some(m) => events.push(m.event.expect("an event")),
            None => break,
        }
    }
    events
}
