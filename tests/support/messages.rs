//! What the in-process tests send and read: CreateRefund requests and payment references
//! for the simulators' fixtures, and metric values out of `/metrics` text.

use refund_gateway::pb;

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
        payment_method_id: super::sims::COMPAGO_ACTIVE_METHOD.into(),
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
