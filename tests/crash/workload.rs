//! What the crash test asks for: payments created at the simulators (so their amounts are
//! known), and the CreateRefund requests for them.

use rand::{Rng as _, rngs::StdRng};
use refund_gateway::pb;
use serde_json::json;

use crate::processes::Simulators;

/// One CreateRefund, with its own `request_id`.
#[derive(Clone, Debug)]
pub struct Spec {
    pub request_id: String,
    pub provider: &'static str,
    pub payment: pb::PaymentReference,
    pub amount: Option<pb::Money>,
    /// Sent twice at once, as a client that double-submits would.
    pub doubled: bool,
}

impl Spec {
    pub fn request(&self) -> pb::CreateRefundRequest {
        pb::CreateRefundRequest {
            request_id: self.request_id.clone(),
            provider: self.provider.into(),
            payment: Some(self.payment.clone()),
            amount: self.amount.clone(),
            reason: pb::RefundReason::RequestedByCustomer.into(),
            description: format!("crash test {}", self.request_id),
            ..Default::default()
        }
    }
}

/// A payment the test created at a simulator.
#[derive(Clone, Debug)]
pub struct Paid {
    pub provider: &'static str,
    pub payment_id: String,
    pub amount_minor: i64,
}

fn money(currency: &str, minor: i64) -> Option<pb::Money> {
    Some(pb::Money {
        currency_code: currency.into(),
        minor_units: minor,
    })
}

/// `123.45` for 12345 minor units.
fn decimal(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// Partial refunds of one D24 deposit (1000.00 MXN), in centavos. All different: the gateway
/// recognises a D24 refund whose answer was lost by its deposit and amount, and does not
/// guess between two of the same amount. The first five fit; all seven do not.
const D24_PARTS: [i64; 7] = [15_000, 17_525, 19_999, 21_010, 23_000, 12_050, 14_075];
/// Partial refunds of one PayMongo payment (500.00 PHP), in centavos; the same idea.
const PAYMONGO_PARTS: [i64; 7] = [6_000, 7_525, 9_999, 11_010, 12_300, 8_050, 9_075];

/// 24 Compago payments refunded whole (four of them asked for twice, under two request
/// ids), 8 D24 deposits and 8 PayMongo payments refunded in five parts each (two of each
/// asked for seven parts, more than they hold): the over-refund guard decides races across
/// crashes. Half the D24 deposits answer IN_PROGRESS and complete later, notified. Some
/// refunds fail, and their reservations are released: a D24 deposit whose card refunds are
/// REJECTED at once, and the first three PayMongo refunds, which settle `failed`. The
/// requests are shuffled, and about one in eight is double-submitted.
pub async fn create(sims: &Simulators, rng: &mut StdRng) -> (Vec<Spec>, Vec<Paid>) {
    let mut specs = Vec::new();
    let mut paid = Vec::new();
    let mut n = 0;
    let mut next_id = |provider: &str| {
        n += 1;
        format!("crash-{provider}-{n:03}")
    };

    for i in 0..24_i64 {
        let minor = 10_000 + 731 * i;
        let created = sims
            .post(
                format!("{}/sandbox/payments", sims.compago),
                json!({ "amount": decimal(minor) }),
            )
            .await;
        let payment = pb::PaymentReference {
            payment_id: created["id"].as_str().expect("id").into(),
            payment_method_id: created["payment_method_id"]
                .as_str()
                .expect("method")
                .into(),
            invoice_id: String::new(),
        };
        paid.push(Paid {
            provider: "compago",
            payment_id: payment.payment_id.clone(),
            amount_minor: minor,
        });
        for _ in 0..if i < 4 { 2 } else { 1 } {
            specs.push(Spec {
                request_id: next_id("compago"),
                provider: "compago",
                payment: payment.clone(),
                amount: None,
                doubled: false,
            });
        }
    }

    for i in 0..8 {
        let mut body = json!({ "amount": "1000.00" });
        if i % 2 == 0 {
            body["card_result"] = json!("IN_PROGRESS");
        }
        let created = sims
            .post(format!("{}/sandbox/deposits", sims.d24), body)
            .await;
        let payment = pb::PaymentReference {
            payment_id: created["id"].as_u64().expect("id").to_string(),
            payment_method_id: String::new(),
            invoice_id: created["invoice_id"].as_str().expect("invoice").into(),
        };
        paid.push(Paid {
            provider: "d24",
            payment_id: payment.payment_id.clone(),
            amount_minor: 100_000,
        });
        let parts = if i >= 6 { 7 } else { 5 };
        for minor in &D24_PARTS[..parts] {
            specs.push(Spec {
                request_id: next_id("d24"),
                provider: "d24",
                payment: payment.clone(),
                amount: money("MXN", *minor),
                doubled: false,
            });
        }
    }

    let created = sims
        .post(
            format!("{}/sandbox/deposits", sims.d24),
            json!({ "amount": "300.00", "card_result": "REJECTED" }),
        )
        .await;
    let rejecting = pb::PaymentReference {
        payment_id: created["id"].as_u64().expect("id").to_string(),
        payment_method_id: String::new(),
        invoice_id: created["invoice_id"].as_str().expect("invoice").into(),
    };
    paid.push(Paid {
        provider: "d24",
        payment_id: rejecting.payment_id.clone(),
        amount_minor: 30_000,
    });
    for minor in [10_000, 12_500] {
        specs.push(Spec {
            request_id: next_id("d24"),
            provider: "d24",
            payment: rejecting.clone(),
            amount: money("MXN", minor),
            doubled: false,
        });
    }

    sims.post(
        format!("{}/sandbox/outcomes", sims.paymongo),
        json!({ "outcomes": ["failed", "failed", "failed"] }),
    )
    .await;
    for i in 0..8 {
        let created = sims
            .post(
                format!("{}/sandbox/payments", sims.paymongo),
                json!({ "amount": 50_000 }),
            )
            .await;
        let payment = pb::PaymentReference {
            payment_id: created["data"]["id"].as_str().expect("id").into(),
            ..Default::default()
        };
        paid.push(Paid {
            provider: "paymongo",
            payment_id: payment.payment_id.clone(),
            amount_minor: 50_000,
        });
        let parts = if i >= 6 { 7 } else { 5 };
        for minor in &PAYMONGO_PARTS[..parts] {
            specs.push(Spec {
                request_id: next_id("paymongo"),
                provider: "paymongo",
                payment: payment.clone(),
                amount: money("PHP", *minor),
                doubled: false,
            });
        }
    }

    for i in (1..specs.len()).rev() {
        let j = rng.random_range(0..=i);
        specs.swap(i, j);
    }
    for spec in &mut specs {
        spec.doubled = rng.random_bool(0.125);
    }
    (specs, paid)
}
