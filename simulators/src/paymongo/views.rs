//! The simulator's resources as PayMongo writes them: Refund, Payment (with its refunds
//! inside) and webhook events (docs/PROVIDERS.md sections 2.1, 2.2 and 2.4).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::state::{Payment, PaymentStatus, Refund, RefundStatus, State, new_id};

/// An event and its body: `(id, type, bytes)`.
pub(super) fn event(
    event_type: &'static str,
    data: Value,
    now: DateTime<Utc>,
) -> (String, &'static str, Vec<u8>) {
    let id = new_id("evt_");
    let at = now.timestamp();
    let body = json!({ "data": {
        "id": id,
        "type": "event",
        "attributes": {
            "type": event_type,
            "livemode": false,
            "data": data,
            "previous_data": {},
            "pending_webhooks": 1,
            "created_at": at,
            "updated_at": at,
        }
    }});
    (
        id,
        event_type,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

/// A Refund resource as PayMongo writes it (S004, PM-PY `refund_entity.py`).
pub fn refund_view(r: &Refund) -> Value {
    json!({
        "id": r.id,
        "type": "refund",
        "attributes": {
            "amount": r.amount,
            "balance_transaction_id": null,
            "currency": r.currency,
            "livemode": false,
            "metadata": r.metadata,
            "notes": r.notes,
            "payment_id": r.payment_id,
            "payout_id": null,
            "reason": r.reason,
            "status": r.status.as_str(),
            "available_at": null,
            "created_at": r.created_at,
            "refunded_at": (r.status == RefundStatus::Succeeded).then_some(r.updated_at),
            "updated_at": r.updated_at,
        }
    })
}

/// A Payment resource (PM-PAY), with its refunds inside.
pub fn payment_view(p: &Payment, state: &State) -> Value {
    let refunds: Vec<Value> = p
        .refunds
        .iter()
        .filter_map(|id| state.refunds.get(id))
        .map(refund_view)
        .collect();
    let fee = p.amount * 25 / 1000;
    json!({
        "id": p.id,
        "type": "payment",
        "attributes": {
            "amount": p.amount,
            "billing": null,
            "currency": p.currency,
            "description": p.description,
            "disputed": false,
            "fee": fee,
            "livemode": false,
            "net_amount": p.amount - fee,
            "origin": "api",
            "payment_intent_id": null,
            "payout": null,
            "source": { "id": format!("src_{}", &p.id[4..]), "type": "gcash" },
            "statement_descriptor": "REFUND GATEWAY SANDBOX",
            "status": p.status.as_str(),
            "tax_amount": null,
            "metadata": null,
            "refunds": refunds,
            "taxes": [],
            "available_at": null,
            "created_at": p.created_at,
            "paid_at": (p.status == PaymentStatus::Paid).then_some(p.created_at),
            "updated_at": p.created_at,
        }
    })
}
