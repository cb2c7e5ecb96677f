//! PayMongo webhooks (docs/PROVIDERS.md sections 2.4 and 2.5): `Paymongo-Signature` verification
//! and event parsing. Pure: the clock comes in as an argument.
//!
//! Verification, in order:
//! 1. the header is `t=<unix seconds>,te=<hex>,li=<hex>` (`te` filled for test-mode events,
//!    `li` for live-mode ones, the other empty);
//! 2. `t` is within [`TOLERANCE`] of now, in both directions (a captured delivery cannot be
//!    replayed later, and a clock far ahead is not trusted either);
//! 3. `hex(HMAC-SHA256(webhook secret, t + "." + raw body))` equals the non-empty signature,
//!    compared in constant time (`hmac`'s `verify_slice`);
//! 4. the event's `livemode` agrees with the signature that matched (`li` for live, `te` for
//!    test), so a test signature never vouches for a live event.
//!
//! Any failure is [`WebhookError::BadSignature`] (401, nothing recorded). Only then is the
//! body trusted: `payment.refund.updated` (a Refund or a Payment inside: switched on the
//! data's `type`) and `payment.refunded` (a Payment with its Refunds) become one
//! [`WebhookNotice::Observed`] per refund named. Other event types are acknowledged and
//! ignored.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::wire::{Envelope, PaymentResource, RefundResource, Resource};
use crate::providers::{WebhookError, WebhookNotice};

/// The header carrying the signature (matched case-insensitively).
pub const SIGNATURE_HEADER: &str = "paymongo-signature";

/// How far `t` may be from now, either way. PayMongo prescribes no window; five minutes
/// covers clock skew and delivery delays, and PayMongo signs each retry afresh.
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// The refund events.
pub const REFUND_UPDATED: &str = "payment.refund.updated";
pub const PAYMENT_REFUNDED: &str = "payment.refunded";

/// A parsed `Paymongo-Signature` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub timestamp: i64,
    /// Test-mode signature (empty for live events).
    pub test: String,
    /// Live-mode signature (empty for test events).
    pub live: String,
}

impl Signature {
    /// Parses `t=...,te=...,li=...` (parts in any order, surrounding spaces ignored).
    pub fn parse(header: &str) -> Result<Self, String> {
        let mut timestamp = None;
        let mut test = String::new();
        let mut live = String::new();
        for part in header.split(',') {
            let (key, value) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("signature part {part:?} is not key=value"))?;
            match key {
                "t" => {
                    timestamp = Some(
                        value
                            .parse::<i64>()
                            .map_err(|_| format!("timestamp {value:?} is not a number"))?,
                    );
                }
                "te" => value.clone_into(&mut test),
                "li" => value.clone_into(&mut live),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or("signature has no timestamp (t=)")?;
        if test.is_empty() && live.is_empty() {
            return Err("signature has neither te= nor li=".to_owned());
        }
        Ok(Self {
            timestamp,
            test,
            live,
        })
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `hex(HMAC-SHA256(secret, t + "." + body))`, lower case: what PayMongo puts in `te`/`li`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// Which mode the matching signature was for: `true` live, `false` test.
fn verify_signature(
    secret: &[u8],
    signature: &Signature,
    body: &[u8],
) -> Result<bool, WebhookError> {
    let mac = mac(secret, signature.timestamp, body);
    for (live, hex_sig) in [(false, &signature.test), (true, &signature.live)] {
        if hex_sig.is_empty() {
            continue;
        }
        // Case-insensitive hex; a value that is not hex simply does not match.
        let Ok(bytes) = hex::decode(hex_sig) else {
            continue;
        };
        if mac.clone().verify_slice(&bytes).is_ok() {
            return Ok(live);
        }
    }
    Err(WebhookError::BadSignature(
        "the signature does not match the body and the account's webhook secret".to_owned(),
    ))
}

/// An event: `{"data":{"id":"evt_…","type":"event","attributes":{"type","livemode","data"}}}`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Event {
    pub id: String,
    pub attributes: EventAttributes,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct EventAttributes {
    #[serde(rename = "type")]
    pub event_type: String,
    pub livemode: bool,
    /// The resource the event is about; its `type` says which.
    pub data: serde_json::Value,
}

/// Verifies a delivery and returns its event. `now` is unix seconds.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<Event, WebhookError> {
    let bad = |why: String| WebhookError::BadSignature(why);
    let header = header.ok_or_else(|| bad("no Paymongo-Signature header".to_owned()))?;
    let signature = Signature::parse(header).map_err(bad)?;
    let age = now.saturating_sub(signature.timestamp).unsigned_abs();
    if age > TOLERANCE.as_secs() {
        return Err(bad(format!(
            "signature timestamp {} is {age}s away from now (at most {}s allowed)",
            signature.timestamp,
            TOLERANCE.as_secs()
        )));
    }
    let signed_live = verify_signature(secret, &signature, body)?;
    // The body is authentic from here on.
    let event: Envelope<Event> = serde_json::from_slice(body).map_err(|e| {
        WebhookError::Malformed(format!("signed body is not a PayMongo event: {e}"))
    })?;
    if event.data.attributes.livemode != signed_live {
        return Err(bad(format!(
            "a {} signature on a {} event",
            if signed_live { "live" } else { "test" },
            if event.data.attributes.livemode {
                "live"
            } else {
                "test"
            },
        )));
    }
    Ok(event.data)
}

/// The refunds a verified event names.
pub fn notices(event: &Event) -> Result<Vec<WebhookNotice>, WebhookError> {
    let attrs = &event.attributes;
    if attrs.event_type != REFUND_UPDATED && attrs.event_type != PAYMENT_REFUNDED {
        return Ok(Vec::new());
    }
    let malformed =
        |e: serde_json::Error| WebhookError::Malformed(format!("event {}: {e}", event.id));
    let kind = attrs
        .data
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("");
    let refunds: Vec<RefundResource> = match kind {
        "refund" => vec![serde_json::from_value(attrs.data.clone()).map_err(malformed)?],
        "payment" => {
            let payment: PaymentResource =
                serde_json::from_value(attrs.data.clone()).map_err(malformed)?;
            payment.attributes.refunds.unwrap_or_default()
        }
        other => {
            return Err(WebhookError::Malformed(format!(
                "event {} ({}) carries a {other:?}, not a refund or a payment",
                event.id, attrs.event_type
            )));
        }
    };
    refunds
        .iter()
        .map(|r| {
            if r.id.is_empty() {
                return Err(WebhookError::Malformed(format!(
                    "event {} names a refund without an id",
                    event.id
                )));
            }
            Ok(notice(r))
        })
        .collect()
}

fn notice(r: &Resource<super::wire::RefundAttributes>) -> WebhookNotice {
    WebhookNotice::Observed {
        provider_refund_id: r.id.clone(),
        gateway_refund_id: r.gateway_id().map(str::to_owned),
        observation: r.observe(),
    }
}

/// Verifies and parses a delivery. `account_livemode`: the mode of the account's secret key
/// when known; a verified event of the other mode is acknowledged and ignored (it cannot be
/// about this account's refunds). `now` is unix seconds.
pub fn parse(
    secret: &[u8],
    headers: &http::HeaderMap,
    body: &[u8],
    account_livemode: Option<bool>,
    now: i64,
) -> Result<Vec<WebhookNotice>, WebhookError> {
    let header = match headers.get(SIGNATURE_HEADER) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            WebhookError::BadSignature("Paymongo-Signature is not text".to_owned())
        })?),
    };
    let event = verify(secret, header, body, now)?;
    if account_livemode.is_some_and(|live| live != event.attributes.livemode) {
        return Ok(Vec::new());
    }
    notices(&event)
}

#[cfg(test)]
mod tests;
