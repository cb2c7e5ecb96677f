//! The API tests' gateway set-up (tenants, worker) on the shared harness, and calling it.

use std::time::Duration;

use refund_gateway::pb;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

pub use crate::support::gateway::{Client, Gateway, Setup};

pub const ACME_KEY: &str = "acme-test-key-1";
pub const ACME_KEY_2: &str = "acme-test-key-2";
pub const GLOBEX_KEY: &str = "globex-test-key";
pub const LIMITED_KEY: &str = "limited-test-key";

/// The tenants of every API test: two keys for acme, one for globex, and "limited", which
/// may only use the d24 account.
const TENANTS: &str = r#"
[[tenants]]
id = "acme"
api_keys = ["acme-test-key-1", "acme-test-key-2"]

[[tenants]]
id = "globex"
api_keys = ["globex-test-key"]

[[tenants]]
id = "limited"
api_keys = ["limited-test-key"]
providers = ["d24"]
"#;

/// The API tests' gateway: the three sandbox accounts, the tenants above, a fast worker
/// that gives up reconciling after six checks.
pub fn setup() -> Setup {
    Setup {
        tenants: TENANTS.to_owned(),
        shutdown_grace_ms: Some(3000),
        event_buffer: Some(4096),
        max_reconcile_attempts: Some(6),
        lease_ms: Some(3000),
        ..Setup::default()
    }
}

pub async fn spawn() -> Gateway {
    spawn_with(setup()).await
}

pub async fn spawn_with(setup: Setup) -> Gateway {
    Gateway::start(setup).await
}

/// Calls the API tests make on their gateway: as a tenant, and on the Compago simulator's
/// admin API.
pub trait ApiGateway {
    async fn client(&self, key: &str) -> Client;
    async fn anonymous_client(&self) -> Client;
    async fn acme(&self) -> Client;
    /// Creates a Compago payment in the simulator and returns its reference.
    async fn compago_payment(&self, amount: &str, status: &str) -> pb::PaymentReference;
    /// The Compago simulator's counters.
    async fn compago_stats(&self) -> serde_json::Value;
    /// How many refund POSTs the Compago simulator received for a payment.
    async fn compago_refund_posts(&self, payment_id: &str) -> u64;
    async fn compago_faults(&self, faults: serde_json::Value);
}

impl ApiGateway for Gateway {
    async fn client(&self, key: &str) -> Client {
        self.keyed_client(key).await
    }

    async fn anonymous_client(&self) -> Client {
        self.new_client().await
    }

    async fn acme(&self) -> Client {
        self.client(ACME_KEY).await
    }

    async fn compago_payment(&self, amount: &str, status: &str) -> pb::PaymentReference {
        self.create_compago_payment(amount, status).await
    }

    async fn compago_stats(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/compago/sandbox/stats", self.sandbox_url))
            .send()
            .await
            .expect("sandbox admin API")
            .json()
            .await
            .expect("json")
    }

    async fn compago_refund_posts(&self, payment_id: &str) -> u64 {
        let stats = self.compago_stats().await;
        stats["refund_posts_by_payment"][payment_id]
            .as_u64()
            .unwrap_or(0)
    }

    async fn compago_faults(&self, faults: serde_json::Value) {
        self.http
            .post(format!("{}/compago/sandbox/faults", self.sandbox_url))
            .json(&faults)
            .send()
            .await
            .expect("sandbox admin API")
            .error_for_status()
            .expect("faults set");
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
    crate::support::gateway::poll_refund(client, id, within, pred).await
}

pub fn status_of(r: &pb::Refund) -> pb::RefundStatus {
    pb::RefundStatus::try_from(r.status).expect("known status")
}
