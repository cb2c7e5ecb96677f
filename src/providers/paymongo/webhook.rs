//! PayMongo webhooks (PROVIDERS.md sections 2.4 and 2.5): `Paymongo-Signature` verification
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
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::domain::RefundStatus;
    use crate::providers::paymongo::wire::GATEWAY_ID_KEY;

    const SECRET: &[u8] = b"whsk_test_secret";
    const NOW: i64 = 1_700_000_000;

    /// PROVIDERS.md section 2.5's vector.
    #[test]
    fn signature_test_vector() {
        assert_eq!(
            sign(
                b"whsk_test_secret",
                1496734173,
                br#"{"data":{"id":"evt_1","type":"event"}}"#
            ),
            "8034a98f781edb913cb333537ca0ad53ef865bac311ca7dddf43a9f824788c1b"
        );
    }

    fn refund(id: &str, status: &str, gateway_id: &str) -> serde_json::Value {
        serde_json::json!({
            "id": id,
            "type": "refund",
            "attributes": {
                "amount": 5000, "currency": "PHP", "livemode": false, "notes": null,
                "payment_id": "pay_1", "reason": "others", "status": status,
                "metadata": {GATEWAY_ID_KEY: gateway_id},
                "created_at": NOW, "updated_at": NOW
            }
        })
    }

    fn event(event_type: &str, livemode: bool, data: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"data": {
            "id": "evt_9", "type": "event",
            "attributes": {
                "type": event_type, "livemode": livemode, "data": data,
                "previous_data": {}, "pending_webhooks": 1,
                "created_at": NOW, "updated_at": NOW
            }
        }}))
        .unwrap()
    }

    fn test_header(t: i64, body: &[u8]) -> String {
        format!("t={t},te={},li=", sign(SECRET, t, body))
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("Paymongo-Signature", HeaderValue::from_str(value).unwrap());
        h
    }

    fn observed(n: &WebhookNotice) -> (&str, Option<&str>, RefundStatus) {
        match n {
            WebhookNotice::Observed {
                provider_refund_id,
                gateway_refund_id,
                observation,
            } => (
                provider_refund_id,
                gateway_refund_id.as_deref(),
                observation.status,
            ),
            other => panic!("{other:?}"),
        }
    }

    /// The header parses in any order; missing parts are refused.
    #[test]
    fn header_parses() {
        assert_eq!(
            Signature::parse("li=,t=12, te=ab").unwrap(),
            Signature {
                timestamp: 12,
                test: "ab".into(),
                live: String::new()
            }
        );
        for bad in [
            "",
            "t=1",
            "t=x,te=ab",
            "te=ab,li=",
            "t=1,te=,li=",
            "t1,te=ab",
        ] {
            assert!(Signature::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// `payment.refund.updated` with a Refund inside names that refund, with its gateway id
    /// and mapped status.
    #[test]
    fn refund_updated_with_a_refund() {
        let body = event(REFUND_UPDATED, false, refund("ref_1", "succeeded", "rf_x"));
        let notices = parse(
            SECRET,
            &headers(&test_header(NOW, &body)),
            &body,
            Some(false),
            NOW,
        )
        .unwrap();
        assert_eq!(notices.len(), 1);
        assert_eq!(
            observed(&notices[0]),
            ("ref_1", Some("rf_x"), RefundStatus::Succeeded)
        );
    }

    /// `payment.refund.updated` with a Payment inside, and `payment.refunded`, name every
    /// refund of the payment.
    #[test]
    fn payment_inside_names_every_refund() {
        let payment = serde_json::json!({
            "id": "pay_1", "type": "payment",
            "attributes": {
                "amount": 20000, "currency": "PHP", "status": "paid", "livemode": false,
                "refunds": [refund("ref_1", "succeeded", "rf_a"), refund("ref_2", "failed", "rf_b")]
            }
        });
        for event_type in [REFUND_UPDATED, PAYMENT_REFUNDED] {
            let body = event(event_type, false, payment.clone());
            let notices =
                parse(SECRET, &headers(&test_header(NOW, &body)), &body, None, NOW).unwrap();
            let got: Vec<_> = notices.iter().map(observed).collect();
            assert_eq!(
                got,
                [
                    ("ref_1", Some("rf_a"), RefundStatus::Succeeded),
                    ("ref_2", Some("rf_b"), RefundStatus::Failed)
                ],
                "{event_type}"
            );
        }
    }

    /// Other event types are accepted and ignored; a refund event about something else is
    /// malformed.
    #[test]
    fn other_events_are_ignored() {
        let body = event(
            "source.chargeable",
            false,
            serde_json::json!({"id": "src_1", "type": "source"}),
        );
        let h = headers(&test_header(NOW, &body));
        assert_eq!(parse(SECRET, &h, &body, None, NOW).unwrap(), vec![]);
        let body = event(
            REFUND_UPDATED,
            false,
            serde_json::json!({"id": "src_1", "type": "source"}),
        );
        let h = headers(&test_header(NOW, &body));
        assert!(matches!(
            parse(SECRET, &h, &body, None, NOW),
            Err(WebhookError::Malformed(_))
        ));
    }

    /// A forged signature, another secret, a changed body, a missing header: all refused.
    #[test]
    fn forged_signatures_are_refused() {
        let body = event(REFUND_UPDATED, false, refund("ref_1", "succeeded", "rf_x"));
        let good = test_header(NOW, &body);
        let other_secret = format!("t={NOW},te={},li=", sign(b"whsk_other", NOW, &body));
        let mut tampered = body.clone();
        let at = tampered.len() / 2;
        tampered[at] ^= 1;
        let cases: Vec<(HeaderMap, Vec<u8>)> = vec![
            (headers(&other_secret), body.clone()),
            (headers(&good), tampered),
            (
                headers(&format!("t={NOW},te={},li=", "0".repeat(64))),
                body.clone(),
            ),
            (headers(&format!("t={NOW},te=zz,li=")), body.clone()),
            (
                headers(&good.replace(&format!("t={NOW}"), &format!("t={}", NOW - 1))),
                body.clone(),
            ),
            (HeaderMap::new(), body.clone()),
        ];
        for (h, b) in cases {
            assert!(
                matches!(
                    parse(SECRET, &h, &b, None, NOW),
                    Err(WebhookError::BadSignature(_))
                ),
                "{h:?}"
            );
        }
        // Upper-case hex is still the same signature.
        let upper = format!("t={NOW},te={},li=", sign(SECRET, NOW, &body).to_uppercase());
        assert!(parse(SECRET, &headers(&upper), &body, None, NOW).is_ok());
    }

    /// A timestamp more than the tolerance away, in either direction, is refused even when
    /// correctly signed; within it, accepted.
    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let body = event(REFUND_UPDATED, false, refund("ref_1", "succeeded", "rf_x"));
        let tol = TOLERANCE.as_secs() as i64;
        for t in [NOW - tol - 1, NOW + tol + 1, 0] {
            let err =
                parse(SECRET, &headers(&test_header(t, &body)), &body, None, NOW).unwrap_err();
            assert!(matches!(err, WebhookError::BadSignature(_)), "{t}");
        }
        for t in [NOW - tol, NOW + tol] {
            assert!(
                parse(SECRET, &headers(&test_header(t, &body)), &body, None, NOW).is_ok(),
                "{t}"
            );
        }
    }

    /// Test events are verified against `te`, live events against `li`; a signature in the
    /// wrong slot does not vouch for the event.
    #[test]
    fn live_and_test_mode_select_the_signature() {
        let live_body = event(REFUND_UPDATED, true, refund("ref_1", "succeeded", "rf_x"));
        let sig = sign(SECRET, NOW, &live_body);
        let live = headers(&format!("t={NOW},te=,li={sig}"));
        assert_eq!(
            parse(SECRET, &live, &live_body, Some(true), NOW)
                .unwrap()
                .len(),
            1
        );
        // The live event's signature sent as a test signature.
        let wrong_slot = headers(&format!("t={NOW},te={sig},li="));
        assert!(matches!(
            parse(SECRET, &wrong_slot, &live_body, None, NOW),
            Err(WebhookError::BadSignature(_))
        ));
        // A test event signed in the li slot.
        let test_body = event(REFUND_UPDATED, false, refund("ref_1", "succeeded", "rf_x"));
        let sig = sign(SECRET, NOW, &test_body);
        assert!(matches!(
            parse(
                SECRET,
                &headers(&format!("t={NOW},te=,li={sig}")),
                &test_body,
                None,
                NOW
            ),
            Err(WebhookError::BadSignature(_))
        ));
        // Both filled, only the right one valid: accepted.
        let both = headers(&format!("t={NOW},te={sig},li={}", "ab".repeat(32)));
        assert_eq!(
            parse(SECRET, &both, &test_body, None, NOW).unwrap().len(),
            1
        );
        // A genuine test event delivered to a live account is acknowledged and ignored.
        let h = headers(&test_header(NOW, &test_body));
        assert_eq!(
            parse(SECRET, &h, &test_body, Some(true), NOW).unwrap(),
            vec![]
        );
    }

    /// A correctly signed body that is not an event is malformed (400), not a bad signature.
    #[test]
    fn signed_garbage_is_malformed() {
        let body = b"{\"hello\":1}".to_vec();
        assert!(matches!(
            parse(SECRET, &headers(&test_header(NOW, &body)), &body, None, NOW),
            Err(WebhookError::Malformed(_))
        ));
    }
}
