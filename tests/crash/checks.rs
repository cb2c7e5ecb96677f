//! After the last restart: the gateway's records against what each caller was told and
//! against the providers' truth, read from the simulators' admin APIs.

use std::collections::{BTreeMap, BTreeSet};

use refund_gateway::pb;
use serde_json::Value;

use crate::{
    client::Answer,
    processes::Simulators,
    workload::{Paid, Spec},
};

pub fn status_name(status: i32) -> &'static str {
    pb::RefundStatus::try_from(status).map_or("?", |s| s.as_str_name())
}

pub fn is(refund: &pb::Refund, status: pb::RefundStatus) -> bool {
    refund.status == i32::from(status)
}

/// Whether a refund holds money (or may): everything but FAILED and CANCELED.
fn holds_money(refund: &pb::Refund) -> bool {
    !is(refund, pb::RefundStatus::Failed) && !is(refund, pb::RefundStatus::Canceled)
}

fn minor_units(refund: &pb::Refund) -> i64 {
    refund.amount.as_ref().map_or(0, |m| m.minor_units)
}

fn payment_id(refund: &pb::Refund) -> &str {
    refund
        .payment
        .as_ref()
        .map_or("", |p| p.payment_id.as_str())
}

/// Minor units of a provider's decimal amount (a JSON number or string, two decimals).
fn minor_of(value: &Value) -> i64 {
    use rust_decimal::{Decimal, prelude::ToPrimitive as _};
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let amount: Decimal = text.parse().expect("a decimal amount");
    (amount * Decimal::ONE_HUNDRED)
        .to_i64()
        .expect("an amount in range")
}

/// What went wrong, and the refunds to show the gateway's log lines of.
#[derive(Debug, Default)]
pub struct Findings {
    pub violations: Vec<String>,
    pub suspects: BTreeSet<String>,
}

impl Findings {
    fn flag<'a>(&mut self, violation: String, suspects: impl IntoIterator<Item = &'a str>) {
        self.violations.push(violation);
        self.suspects
            .extend(suspects.into_iter().map(str::to_owned));
    }
}

/// A refund a provider holds, with the gateway refund id it carries (D24: its
/// X-Idempotency-Key; PayMongo: `metadata.refund_gateway_id`).
#[derive(Debug)]
pub struct Held {
    pub provider: &'static str,
    pub provider_id: String,
    pub gateway_id: String,
    pub payment_id: String,
    pub amount_minor: i64,
    pub status: String,
    /// Not rejected, cancelled or failed.
    pub holds: bool,
}

/// The providers' side, from the simulators' listings and counters.
#[derive(Debug)]
pub struct Truth {
    /// Compago payment id -> its status.
    pub compago_status: BTreeMap<String, String>,
    pub compago_stats: Value,
    /// D24 and PayMongo refunds made through the API.
    pub held: Vec<Held>,
    pub d24_stats: Value,
    pub paymongo_stats: Value,
}

impl Truth {
    pub async fn read(sims: &Simulators) -> Self {
        let compago = sims.get(format!("{}/sandbox/payments", sims.compago)).await;
        let compago_status = compago["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().expect("id").to_owned(),
                    p["status"].as_str().expect("status").to_owned(),
                )
            })
            .collect();
        let mut held = Vec::new();
        let d24 = sims.get(format!("{}/sandbox/refunds", sims.d24)).await;
        for item in d24["items"].as_array().expect("items") {
            let status = item["status"].as_str().expect("status").to_owned();
            held.push(Held {
                provider: "d24",
                provider_id: item["id"].to_string(),
                gateway_id: item["idempotency_key"].as_str().unwrap_or("").to_owned(),
                payment_id: item["deposit_id"].to_string(),
                amount_minor: minor_of(&item["amount"]),
                holds: !matches!(status.as_str(), "REJECTED" | "CANCELLED"),
                status,
            });
        }
        let paymongo = sims.get(format!("{}/sandbox/refunds", sims.paymongo)).await;
        for item in paymongo["data"].as_array().expect("data") {
            if item["sandbox"]["outside"] == true {
                continue;
            }
            let attributes = &item["attributes"];
            let status = attributes["status"].as_str().expect("status").to_owned();
            held.push(Held {
                provider: "paymongo",
                provider_id: item["id"].as_str().expect("id").to_owned(),
                gateway_id: attributes["metadata"]["refund_gateway_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                payment_id: attributes["payment_id"]
                    .as_str()
                    .expect("payment")
                    .to_owned(),
                amount_minor: attributes["amount"].as_i64().expect("centavos"),
                holds: status != "failed",
                status,
            });
        }
        Self {
            compago_status,
            compago_stats: sims.get(format!("{}/sandbox/stats", sims.compago)).await,
            held,
            d24_stats: sims.get(format!("{}/sandbox/stats", sims.d24)).await,
            paymongo_stats: sims.get(format!("{}/sandbox/stats", sims.paymongo)).await,
        }
    }

    pub fn compago_refunded(&self, paid: &[Paid]) -> usize {
        paid.iter()
            .filter(|p| p.provider == "compago")
            .filter(|p| {
                self.compago_status.get(&p.payment_id).map(String::as_str) == Some("REFUNDED")
            })
            .count()
    }
}

/// What callers were told: every `request_id` answered the same every time; every
/// acknowledged refund is still there, under its `request_id`; no refund nobody asked for,
/// none twice for one request, none that holds money for a request answered with an error;
/// nothing left unsettled.
pub fn answers(
    specs: &[Spec],
    answers: &BTreeMap<String, Vec<Answer>>,
    refunds: &BTreeMap<String, pb::Refund>,
    f: &mut Findings,
) {
    for (request_id, got) in answers {
        let first = got[0].identity();
        if let Some(other) = got.iter().find(|a| a.identity() != first) {
            f.flag(
                format!("{request_id} answered {first}, later {}", other.identity()),
                [],
            );
        }
        for answer in got {
            if let Answer::Refund(r) = answer {
                match refunds.get(&r.id) {
                    None => f.flag(
                        format!("{request_id}: acknowledged refund {} is missing", r.id),
                        [r.id.as_str()],
                    ),
                    Some(now) if &now.request_id != request_id => f.flag(
                        format!(
                            "refund {} acknowledged for {request_id} carries {}",
                            r.id, now.request_id
                        ),
                        [r.id.as_str()],
                    ),
                    Some(_) => {}
                }
            }
        }
        if let Answer::Error { code, reason } = &got[0]
            && let Some(r) = refunds
                .values()
                .find(|r| &r.request_id == request_id && holds_money(r))
        {
            f.flag(
                format!(
                    "{request_id} was answered {code:?} {reason}, but its refund {} is {}",
                    r.id,
                    status_name(r.status)
                ),
                [r.id.as_str()],
            );
        }
    }
    let asked: BTreeSet<&str> = specs.iter().map(|s| s.request_id.as_str()).collect();
    let mut per_request: BTreeMap<&str, usize> = BTreeMap::new();
    for r in refunds.values() {
        *per_request.entry(&r.request_id).or_default() += 1;
        if !asked.contains(r.request_id.as_str()) {
            f.flag(
                format!(
                    "refund {} has a request_id nobody sent: {}",
                    r.id, r.request_id
                ),
                [r.id.as_str()],
            );
        }
        let settled = is(r, pb::RefundStatus::Succeeded)
            || is(r, pb::RefundStatus::Failed)
            || is(r, pb::RefundStatus::Canceled);
        if !settled {
            f.flag(
                format!(
                    "refund {} ({}) is still {}",
                    r.id,
                    r.provider,
                    status_name(r.status)
                ),
                [r.id.as_str()],
            );
        }
    }
    for (request_id, n) in per_request {
        if n > 1 {
            f.flag(format!("{request_id} has {n} refunds"), []);
        }
    }
}

/// Compago refunds a payment whole, once: the payment's status is the truth. A REFUNDED
/// payment has exactly one SUCCEEDED gateway refund, of its whole amount; any other has none
/// that holds money; and Compago applied no refund beyond these.
pub fn compago(
    paid: &[Paid],
    refunds: &BTreeMap<String, pb::Refund>,
    truth: &Truth,
    f: &mut Findings,
) {
    for p in paid.iter().filter(|p| p.provider == "compago") {
        let status = truth
            .compago_status
            .get(&p.payment_id)
            .map_or("missing", String::as_str);
        let ours: Vec<&pb::Refund> = refunds
            .values()
            .filter(|r| r.provider == "compago" && payment_id(r) == p.payment_id)
            .collect();
        let holding: Vec<&pb::Refund> = ours.iter().copied().filter(|r| holds_money(r)).collect();
        let ids = ours.iter().map(|r| r.id.as_str());
        if status == "REFUNDED" {
            let succeeded: Vec<_> = ours
                .iter()
                .filter(|r| is(r, pb::RefundStatus::Succeeded))
                .collect();
            if holding.len() != 1 || succeeded.len() != 1 {
                f.flag(
                    format!(
                        "compago payment {} is REFUNDED; the gateway has {} SUCCEEDED and {} holding refunds of it",
                        p.payment_id,
                        succeeded.len(),
                        holding.len()
                    ),
                    ids,
                );
            } else if minor_units(succeeded[0]) != p.amount_minor {
                f.flag(
                    format!(
                        "compago refund {} is not the whole payment",
                        succeeded[0].id
                    ),
                    [succeeded[0].id.as_str()],
                );
            }
        } else if let Some(r) = holding.first() {
            f.flag(
                format!(
                    "compago payment {} is {status}, but the gateway's refund {} of it is {}",
                    p.payment_id,
                    r.id,
                    status_name(r.status)
                ),
                ids,
            );
        }
    }
    let applied = truth.compago_stats["refunds_applied"].as_u64().unwrap_or(0);
    let refunded = truth.compago_refunded(paid) as u64;
    if applied != refunded {
        f.flag(
            format!(
                "Compago applied {applied} refunds; {refunded} of the test's payments are refunded"
            ),
            [],
        );
    }
}

/// D24 and PayMongo: every provider refund belongs to a gateway refund of the same payment
/// and amount (it carries the gateway refund's id, or is the one the gateway recorded) and
/// carries that id, as every send of it must; each gateway refund has at most one provider
/// refund, exactly one that holds money if it is SUCCEEDED or PROCESSING, none that holds
/// money if it is FAILED or CANCELED; per payment, the provider's refunds and the gateway's
/// agree in number and sum, and stay within the payment; the simulators' counters agree
/// with their listings.
pub fn keyed_providers(
    paid: &[Paid],
    refunds: &BTreeMap<String, pb::Refund>,
    truth: &Truth,
    f: &mut Findings,
) {
    let recorded = |h: &Held, r: &pb::Refund| {
        r.provider == h.provider
            && !r.provider_refund_id.is_empty()
            && r.provider_refund_id == h.provider_id
    };
    let owner = |h: &Held| {
        refunds
            .get(&h.gateway_id)
            .filter(|r| r.provider == h.provider)
            .or_else(|| refunds.values().find(|r| recorded(h, r)))
    };
    for h in &truth.held {
        let Some(r) = owner(h) else {
            f.flag(
                format!(
                    "{} holds refund {} ({} of payment {}, {}) that the gateway does not know (it carries {:?})",
                    h.provider, h.provider_id, h.amount_minor, h.payment_id, h.status, h.gateway_id
                ),
                [h.gateway_id.as_str(), h.payment_id.as_str()],
            );
            continue;
        };
        if h.gateway_id != r.id {
            f.flag(
                format!(
                    "{} refund {} of gateway refund {} carries {:?}, not the gateway refund's id",
                    h.provider, h.provider_id, r.id, h.gateway_id
                ),
                [r.id.as_str()],
            );
        }
        if payment_id(r) != h.payment_id || minor_units(r) != h.amount_minor {
            f.flag(
                format!(
                    "{} refund {} ({} of {}) does not match gateway refund {} ({} of {})",
                    h.provider,
                    h.provider_id,
                    h.amount_minor,
                    h.payment_id,
                    r.id,
                    minor_units(r),
                    payment_id(r)
                ),
                [r.id.as_str()],
            );
        }
    }
    for r in refunds.values().filter(|r| r.provider != "compago") {
        let theirs: Vec<&Held> = truth
            .held
            .iter()
            .filter(|h| h.provider == r.provider && (h.gateway_id == r.id || recorded(h, r)))
            .collect();
        let holding = theirs.iter().filter(|h| h.holds).count();
        let status = status_name(r.status);
        if theirs.len() > 1 {
            f.flag(
                format!(
                    "{} holds {} refunds for gateway refund {} ({}): {:?}",
                    r.provider,
                    theirs.len(),
                    r.id,
                    r.request_id,
                    theirs
                        .iter()
                        .map(|h| h.provider_id.as_str())
                        .collect::<Vec<_>>()
                ),
                [r.id.as_str()],
            );
        }
        let taken = is(r, pb::RefundStatus::Succeeded) || is(r, pb::RefundStatus::Processing);
        if taken && holding != 1 {
            f.flag(
                format!(
                    "gateway refund {} is {status}; {} holds {holding} live refunds for it",
                    r.id, r.provider
                ),
                [r.id.as_str()],
            );
        }
        if !holds_money(r) && holding > 0 {
            f.flag(
                format!(
                    "gateway refund {} is {status}, but {} holds it ({})",
                    r.id, r.provider, theirs[0].status
                ),
                [r.id.as_str()],
            );
        }
    }
    for p in paid.iter().filter(|p| p.provider != "compago") {
        let theirs: Vec<&Held> = truth
            .held
            .iter()
            .filter(|h| h.provider == p.provider && h.payment_id == p.payment_id && h.holds)
            .collect();
        let their_sum: i64 = theirs.iter().map(|h| h.amount_minor).sum();
        let ours: Vec<&pb::Refund> = refunds
            .values()
            .filter(|r| r.provider == p.provider && payment_id(r) == p.payment_id && holds_money(r))
            .collect();
        let our_sum: i64 = ours.iter().map(|r| minor_units(r)).sum();
        if their_sum > p.amount_minor {
            f.flag(
                format!(
                    "{} payment {} of {} is refunded {their_sum}",
                    p.provider, p.payment_id, p.amount_minor
                ),
                [p.payment_id.as_str()],
            );
        }
        if theirs.len() != ours.len() || their_sum != our_sum {
            f.flag(
                format!(
                    "{} payment {}: the provider holds {} refunds for {their_sum}, the gateway {} for {our_sum}",
                    p.provider,
                    p.payment_id,
                    theirs.len(),
                    ours.len()
                ),
                [p.payment_id.as_str()],
            );
        }
    }
    for (provider, stats) in [
        ("d24", &truth.d24_stats),
        ("paymongo", &truth.paymongo_stats),
    ] {
        let created = stats["refunds_created"].as_u64().unwrap_or(0) as usize;
        let listed = truth.held.iter().filter(|h| h.provider == provider).count();
        if created != listed {
            f.flag(
                format!("{provider} created {created} refunds but lists {listed}"),
                [],
            );
        }
    }
}

/// The event feed: strictly increasing; the live subscriber, resumed after every death from
/// the last sequence it saw, got exactly the stored feed; every refund it named is listed;
/// each refund's last event is its current state.
pub fn feed(
    stored: &[pb::RefundEvent],
    live: &[pb::RefundEvent],
    refunds: &BTreeMap<String, pb::Refund>,
    f: &mut Findings,
) {
    for (name, events) in [("stored", stored), ("live", live)] {
        for pair in events.windows(2) {
            if pair[1].sequence <= pair[0].sequence {
                f.flag(
                    format!(
                        "{name} feed: sequence {} after {}",
                        pair[1].sequence, pair[0].sequence
                    ),
                    [],
                );
            }
        }
    }
    let sequences = |events: &[pb::RefundEvent]| -> BTreeSet<u64> {
        events.iter().map(|e| e.sequence).collect()
    };
    let (stored_seqs, live_seqs) = (sequences(stored), sequences(live));
    if stored_seqs != live_seqs {
        f.flag(
            format!(
                "the live feed ({} events) is not the stored feed ({}): missed {:?}, extra {:?}",
                live.len(),
                stored.len(),
                stored_seqs
                    .difference(&live_seqs)
                    .take(10)
                    .collect::<Vec<_>>(),
                live_seqs
                    .difference(&stored_seqs)
                    .take(10)
                    .collect::<Vec<_>>()
            ),
            [],
        );
    } else if live != stored {
        f.flag(
            "the live feed's events differ from the stored ones".into(),
            [],
        );
    }
    let seen: BTreeSet<&str> = stored
        .iter()
        .chain(live)
        .filter_map(|e| e.refund.as_ref().map(|r| r.id.as_str()))
        .collect();
    for id in seen {
        if !refunds.contains_key(id) {
            f.flag(
                format!("refund {id} was in the event feed but is not listed"),
                [id],
            );
        }
    }
    let mut last: BTreeMap<&str, &pb::RefundEvent> = BTreeMap::new();
    for event in stored {
        if let Some(r) = &event.refund {
            last.insert(&r.id, event);
        }
    }
    for r in refunds.values() {
        match last
            .get(r.id.as_str())
            .and_then(|e| e.refund.as_ref().map(|s| (e.sequence, s)))
        {
            None => f.flag(format!("refund {} has no event", r.id), [r.id.as_str()]),
            Some((sequence, snapshot)) if snapshot != r => f.flag(
                format!(
                    "refund {}: its last event (sequence {sequence}) shows {}, the refund is {}",
                    r.id,
                    status_name(snapshot.status),
                    status_name(r.status)
                ),
                [r.id.as_str()],
            ),
            Some(_) => {}
        }
    }
}
