//! Starting a gateway for a test, and calling it.

use std::{path::Path, time::Duration};

use refund_gateway::{
    app::{self, Running},
    config::Config,
    pb::{self, refund_service_client::RefundServiceClient},
};
use serde_json::json;
use tonic::{
    Code, Request, Status,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_types::StatusExt as _;

pub const ACME_KEY: &str = "acme-test-key-1";
pub const ACME_KEY_2: &str = "acme-test-key-2";
pub const GLOBEX_KEY: &str = "globex-test-key";
pub const LIMITED_KEY: &str = "limited-test-key";

/// A running gateway with its own store file and simulators.
pub struct TestGateway {
    pub running: Option<Running>,
    pub grpc_url: String,
    pub http_url: String,
    pub sandbox_url: String,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

/// Options for [`spawn`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Extra TOML appended to the test config.
    pub extra: String,
    /// Provider timeout for the sandbox accounts.
    pub timeout_ms: u64,
    /// `server.event_buffer`.
    pub event_buffer: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            extra: String::new(),
            timeout_ms: 2_000,
            event_buffer: 4096,
        }
    }
}

pub fn config_text(db: &Path, opts: &Options) -> String {
    format!(
        r#"
[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
shutdown_grace_ms = 3000
event_buffer = {event_buffer}

[store]
url = "sqlite://{db}"

[sandbox]
listen = "127.0.0.1:0"

[worker]
tick_ms = 50
first_check_ms = 100
max_check_interval_ms = 400
max_reconcile_attempts = 6
lease_ms = 3000

[[tenants]]
id = "acme"
api_keys = ["{ACME_KEY}", "{ACME_KEY_2}"]

[[tenants]]
id = "globex"
api_keys = ["{GLOBEX_KEY}"]

[[tenants]]
id = "limited"
api_keys = ["{LIMITED_KEY}"]
providers = ["d24"]

[providers.compago]
kind = "compago"
sandbox = true
timeout_ms = {timeout}

[providers.d24]
kind = "d24"
sandbox = true
timeout_ms = {timeout}

[providers.paymongo]
kind = "paymongo"
sandbox = true
timeout_ms = {timeout}
{extra}
"#,
        db = db.display(),
        timeout = opts.timeout_ms,
        event_buffer = opts.event_buffer,
        extra = opts.extra,
    )
}

pub async fn spawn() -> TestGateway {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(opts: Options) -> TestGateway {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("gateway.db");
    start_on(dir, &db, &opts).await
}

async fn start_on(dir: tempfile::TempDir, db: &Path, opts: &Options) -> TestGateway {
    refund_gateway::telemetry::init();
    let config = Config::from_toml(&config_text(db, opts)).expect("test config is valid");
    let running = app::start(config).await.expect("gateway starts");
    let grpc_url = format!("http://{}", running.grpc_addr);
    let http_url = format!("http://{}", running.http_addr);
    let sandbox_url = format!(
        "http://{}",
        running
            .sandbox
            .as_ref()
            .expect("sandbox accounts start simulators")
            .addr
    );
    TestGateway {
        running: Some(running),
        grpc_url,
        http_url,
        sandbox_url,
        dir,
        http: reqwest::Client::new(),
    }
}

impl TestGateway {
    /// Stops the gateway gracefully and starts a new one on the same store file (the
    /// simulators start afresh).
    pub async fn restart(mut self) -> TestGateway {
        let running = self.running.take().expect("running");
        running.shutdown();
        running.wait().await.expect("clean shutdown");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        let db = dir.path().join("gateway.db");
        start_on(dir, &db, &Options::default()).await
    }

    pub async fn client(&self, key: &str) -> Client {
        let channel = Channel::from_shared(self.grpc_url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect to the gateway");
        RefundServiceClient::with_interceptor(channel, ApiKey(Some(format!("Bearer {key}"))))
    }

    pub async fn anonymous_client(&self) -> Client {
        let channel = Channel::from_shared(self.grpc_url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect to the gateway");
        RefundServiceClient::with_interceptor(channel, ApiKey(None))
    }

    pub async fn acme(&self) -> Client {
        self.client(ACME_KEY).await
    }

    /// Creates a Compago payment in the simulator and returns its reference.
    pub async fn compago_payment(&self, amount: &str, status: &str) -> pb::PaymentReference {
        let created: serde_json::Value = self
            .http
            .post(format!("{}/compago/sandbox/payments", self.sandbox_url))
            .json(&json!({ "amount": amount, "status": status }))
            .send()
            .await
            .expect("sandbox admin API")
            .error_for_status()
            .expect("payment created")
            .json()
            .await
            .expect("json");
        pb::PaymentReference {
            payment_id: created["id"].as_str().expect("id").to_owned(),
            payment_method_id: created["payment_method_id"]
                .as_str()
                .expect("payment_method_id")
                .to_owned(),
            invoice_id: String::new(),
        }
    }

    /// The Compago simulator's counters.
    pub async fn compago_stats(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/compago/sandbox/stats", self.sandbox_url))
            .send()
            .await
            .expect("sandbox admin API")
            .json()
            .await
            .expect("json")
    }

    /// How many refund POSTs the Compago simulator received for a payment.
    pub async fn compago_refund_posts(&self, payment_id: &str) -> u64 {
        let stats = self.compago_stats().await;
        stats["refund_posts_by_payment"][payment_id]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn compago_faults(&self, faults: serde_json::Value) {
        self.http
            .post(format!("{}/compago/sandbox/faults", self.sandbox_url))
            .json(&faults)
            .send()
            .await
            .expect("sandbox admin API")
            .error_for_status()
            .expect("faults set");
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.http_url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.shutdown();
        }
    }
}

pub type Client = RefundServiceClient<InterceptedService<Channel, ApiKey>>;

/// Adds the API key to every call.
#[derive(Clone, Debug)]
pub struct ApiKey(Option<String>);

impl Interceptor for ApiKey {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut()
                .insert("authorization", v.parse().expect("ascii"));
        }
        Ok(req)
    }
}

/// A CreateRefund request for a payment, full amount.
pub fn create(
    request_id: &str,
    provider: &str,
    payment: &pb::PaymentReference,
) -> pb::CreateRefundRequest {
    pb::CreateRefundRequest {
        request_id: request_id.to_owned(),
        provider: provider.to_owned(),
        payment: Some(payment.clone()),
        amount: None,
        reason: pb::RefundReason::RequestedByCustomer.into(),
        description: "customer returned the item".to_owned(),
        metadata: [("order".to_owned(), "A-1001".to_owned())]
            .into_iter()
            .collect(),
        bank_account: None,
    }
}

pub fn mxn(minor: i64) -> pb::Money {
    pb::Money {
        currency_code: "MXN".into(),
        minor_units: minor,
    }
}

/// A unique request id.
pub fn rid() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

/// Asserts the status code and the ErrorInfo reason (and domain), returns the status.
#[track_caller]
pub fn assert_error(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "refunds.v1");
}

/// The BadRequest field names of an error.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Polls `GetRefund` until `pred` holds or the time runs out.
pub async fn wait_for(
    client: &mut Client,
    id: &str,
    pred: impl Fn(&pb::Refund) -> bool,
    within: Duration,
) -> pb::Refund {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let refund = client
            .get_refund(pb::GetRefundRequest { id: id.to_owned() })
            .await
            .expect("get refund")
            .into_inner()
            .refund
            .expect("refund");
        if pred(&refund) {
            return refund;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "refund {id} never got there; last seen {refund:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn status_of(r: &pb::Refund) -> pb::RefundStatus {
    pb::RefundStatus::try_from(r.status).expect("known status")
}
