//! A gateway started in-process for a test (`app::start`: gRPC and HTTP on 127.0.0.1:0, a
//! temporary SQLite file, the three sandbox accounts served by the built-in simulators over
//! real HTTP, open mode, a fast worker), with its generated gRPC client and direct access to
//! the simulators' state, counters and fault switches.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use refund_gateway::{
    app::{self, Running},
    config::Config,
    pb::{self, refund_service_client::RefundServiceClient},
};
use simulators::{CompagoSim, D24Sim, PayMongoSim};
use tonic::transport::Channel;

pub type Client = RefundServiceClient<Channel>;

/// How a test's gateway is set up.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Every account's per-request timeout.
    pub timeout_ms: u64,
    /// The worker's first wait before asking about a refund that is not final.
    pub first_check_ms: u64,
    /// The worker's longest wait between two checks.
    pub max_check_interval_ms: u64,
    /// Extra keys for each account's table (`max_in_flight = 4`, ...).
    pub compago: String,
    pub d24: String,
    pub paymongo: String,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            timeout_ms: 2_000,
            first_check_ms: 100,
            max_check_interval_ms: 400,
            compago: String::new(),
            d24: String::new(),
            paymongo: String::new(),
        }
    }
}

pub struct Gateway {
    pub running: Running,
    pub client: Client,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start(setup: Setup) -> Self {
        refund_gateway::telemetry::init();
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_toml(&format!(
            r#"
            [server]
            grpc_listen = "127.0.0.1:0"
            http_listen = "127.0.0.1:0"
            shutdown_grace_ms = 1000

            [store]
            url = "sqlite://{db}"

            [sandbox]
            listen = "127.0.0.1:0"

            [worker]
            tick_ms = 50
            first_check_ms = {first_check}
            max_check_interval_ms = {max_check}
            max_reconcile_attempts = 20

            [providers.compago]
            kind = "compago"
            sandbox = true
            timeout_ms = {timeout}
            {compago}

            [providers.d24]
            kind = "d24"
            sandbox = true
            timeout_ms = {timeout}
            {d24}

            [providers.paymongo]
            kind = "paymongo"
            sandbox = true
            timeout_ms = {timeout}
            {paymongo}
            "#,
            db = dir.path().join("gateway.db").display(),
            first_check = setup.first_check_ms,
            max_check = setup.max_check_interval_ms,
            timeout = setup.timeout_ms,
            compago = setup.compago,
            d24 = setup.d24,
            paymongo = setup.paymongo,
        ))
        .expect("the test config is valid");
        let running = app::start(config).await.expect("the gateway starts");
        let client = connect(&running).await;
        Self {
            running,
            client,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// A client on a connection of its own (HTTP/2 multiplexes, but a test that measures
    /// latencies should not share one connection's flow control with a stalled stream).
    pub async fn new_client(&self) -> Client {
        connect(&self.running).await
    }

    pub fn compago(&self) -> &CompagoSim {
        &self.running.sandbox.as_ref().unwrap().sandbox.compago
    }

    pub fn d24(&self) -> &D24Sim {
        &self.running.sandbox.as_ref().unwrap().sandbox.d24
    }

    pub fn paymongo(&self) -> &PayMongoSim {
        &self.running.sandbox.as_ref().unwrap().sandbox.paymongo
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("http://{}/metrics", self.running.http_addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn get(&self, id: &str) -> pb::Refund {
        self.client
            .clone()
            .get_refund(pb::GetRefundRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner()
            .refund
            .unwrap()
    }

    /// Waits (at most `within`) until refund `id` satisfies `pred`.
    pub async fn wait_for(
        &self,
        id: &str,
        within: Duration,
        pred: impl Fn(&pb::Refund) -> bool,
    ) -> pb::Refund {
        let deadline = Instant::now() + within;
        loop {
            let refund = self.get(id).await;
            if pred(&refund) {
                return refund;
            }
            assert!(
                Instant::now() < deadline,
                "refund {id} never got there; last seen {refund:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every stored event of refund `id`, from the event feed (WatchRefunds from sequence 0,
    /// read until it goes quiet).
    pub async fn events_of(&self, id: &str) -> Vec<pb::RefundEvent> {
        let mut stream = self
            .client
            .clone()
            .watch_refunds(pb::WatchRefundsRequest {
                after_sequence: Some(0),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut events = Vec::new();
        while let Ok(Ok(Some(message))) =
            tokio::time::timeout(Duration::from_millis(300), stream.message()).await
        {
            let event = message.event.unwrap();
            if event.refund.as_ref().unwrap().id == id {
                events.push(event);
            }
        }
        events
    }
}

async fn connect(running: &Running) -> Client {
    RefundServiceClient::connect(format!("http://{}", running.grpc_addr))
        .await
        .unwrap()
}

/// The sum of the samples of metric `name` whose labels include every pair in `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric_name, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            if metric_name != name {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

pub fn money(currency: &str, minor: i64) -> pb::Money {
    pb::Money {
        currency_code: currency.into(),
        minor_units: minor,
    }
}

/// A CreateRefund request.
pub fn request(
    request_id: &str,
    provider: &str,
    payment: pb::PaymentReference,
    amount: Option<pb::Money>,
) -> pb::CreateRefundRequest {
    pb::CreateRefundRequest {
        request_id: request_id.into(),
        provider: provider.into(),
        payment: Some(payment),
        amount,
        reason: pb::RefundReason::RequestedByCustomer as i32,
        description: "customer returned the item".into(),
        metadata: Default::default(),
        bank_account: None,
    }
}

pub fn compago_payment(payment_id: &str) -> pb::PaymentReference {
    pb::PaymentReference {
        payment_id: payment_id.into(),
        payment_method_id: simulators::compago::fixtures::ACTIVE_METHOD.into(),
        invoice_id: String::new(),
    }
}

pub fn d24_payment(deposit_id: u64, invoice_id: &str) -> pb::PaymentReference {
    pb::PaymentReference {
        payment_id: deposit_id.to_string(),
        payment_method_id: String::new(),
        invoice_id: invoice_id.into(),
    }
}

pub fn paymongo_payment(payment_id: &str) -> pb::PaymentReference {
    pb::PaymentReference {
        payment_id: payment_id.into(),
        ..Default::default()
    }
}

pub fn status_of(refund: &pb::Refund) -> pb::RefundStatus {
    pb::RefundStatus::try_from(refund.status).unwrap()
}
