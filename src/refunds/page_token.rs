//! ListRefunds page tokens: opaque to callers, signed so they cannot be forged or moved to
//! another tenant or another set of filters (AIP-158).
//!
//! A token is `base64url(payload || HMAC-SHA256(key, payload)[..16])` where the payload is
//! the keyset cursor (the last refund's `created_at` and id) plus a digest of the tenant and
//! filters. The key is a random secret kept in the store, so tokens survive restarts.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest as _, Sha256};

use crate::domain::{ApiError, RefundId, RefundStatus, TenantId, reason};

const MAC_LEN: usize = 16;

/// The filters a token is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Filter {
    pub provider: Option<String>,
    pub status: Option<RefundStatus>,
    pub payment_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// `created_at` of the last refund on the page, unix microseconds.
    t: i64,
    /// Its id.
    i: String,
    /// Digest of tenant and filters.
    f: String,
}

fn scope_digest(tenant: &TenantId, filter: &Filter) -> String {
    let mut h = Sha256::new();
    for part in [
        tenant.as_str(),
        filter.provider.as_deref().unwrap_or(""),
        filter.status.map_or("", RefundStatus::as_str),
        filter.payment_id.as_deref().unwrap_or(""),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(payload);
    m
}

/// `payload` as a token signed with `key`.
fn sign<T: Serialize>(key: &[u8], payload: &T) -> String {
    let payload = serde_json::to_vec(payload).expect("a plain struct serializes");
    let tag = mac(key, &payload).finalize().into_bytes();
    let mut raw = payload;
    raw.extend_from_slice(&tag[..MAC_LEN]);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The payload of a token signed with `key`; `None` when `token` is not one.
fn verified<T: DeserializeOwned>(key: &[u8], token: &str) -> Option<T> {
    let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
    if raw.len() <= MAC_LEN {
        return None;
    }
    let (payload, tag) = raw.split_at(raw.len() - MAC_LEN);
    mac(key, payload).verify_truncated_left(tag).ok()?;
    serde_json::from_slice(payload).ok()
}

/// Makes the token that continues after `(created_at, id)`.
pub(super) fn seal(
    key: &[u8],
    tenant: &TenantId,
    filter: &Filter,
    created_at: DateTime<Utc>,
    id: &RefundId,
) -> String {
    let payload = Payload {
        t: created_at.timestamp_micros(),
        i: id.as_str().to_owned(),
        f: scope_digest(tenant, filter),
    };
    sign(key, &payload)
}

/// Checks a token and returns its cursor.
pub(super) fn open(
    key: &[u8],
    token: &str,
    tenant: &TenantId,
    filter: &Filter,
) -> Result<(DateTime<Utc>, RefundId), ApiError> {
    let bad = |why: &str| {
        ApiError::invalid_field(reason::INVALID_PAGE_TOKEN, "page_token", why.to_owned())
    };
    let payload: Payload =
        verified(key, token).ok_or_else(|| bad("not a page token from this gateway"))?;
    if payload.f != scope_digest(tenant, filter) {
        return Err(bad("the filters changed since the token was issued"));
    }
    let created_at = DateTime::from_timestamp_micros(payload.t)
        .ok_or_else(|| bad("not a page token from this gateway"))?;
    let id =
        RefundId::parse(&payload.i).ok_or_else(|| bad("not a page token from this gateway"))?;
    Ok((created_at, id))
}

/// The payload of a ListRefundEvents token: the last sequence on the page, bound to the
/// tenant and the refund.
#[derive(Serialize, Deserialize)]
struct EventsPayload {
    /// The last sequence on the page.
    s: u64,
    /// Digest of tenant and refund id.
    r: String,
}

fn events_digest(tenant: &TenantId, refund: &RefundId) -> String {
    scope_digest(
        tenant,
        &Filter {
            provider: Some(format!("events of {}", refund.as_str())),
            status: None,
            payment_id: None,
        },
    )
}

/// Makes the ListRefundEvents token that continues after `sequence`.
pub(super) fn seal_events(
    key: &[u8],
    tenant: &TenantId,
    refund: &RefundId,
    sequence: u64,
) -> String {
    let payload = EventsPayload {
        s: sequence,
        r: events_digest(tenant, refund),
    };
    sign(key, &payload)
}

/// Checks a ListRefundEvents token and returns the sequence it continues after.
pub(super) fn open_events(
    key: &[u8],
    token: &str,
    tenant: &TenantId,
    refund: &RefundId,
) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::invalid_field(
            reason::INVALID_PAGE_TOKEN,
            "page_token",
            "not a page token of this refund's history from this gateway",
        )
    };
    let payload: EventsPayload = verified(key, token).ok_or_else(bad)?;
    if payload.r != events_digest(tenant, refund) {
        return Err(bad());
    }
    Ok(payload.s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> Filter {
        Filter {
            provider: Some("compago".into()),
            status: None,
            payment_id: None,
        }
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let key = b"0123456789abcdef0123456789abcdef";
        let tenant = TenantId::new("acme");
        let id = RefundId::generate();
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let token = seal(key, &tenant, &filter(), at, &id);
        assert_eq!(open(key, &token, &tenant, &filter()).unwrap(), (at, id));

        // Another tenant, other filters, another key, a flipped character: all refused.
        let other = TenantId::new("globex");
        assert!(open(key, &token, &other, &filter()).is_err());
        let mut f = filter();
        f.status = Some(RefundStatus::Failed);
        assert!(open(key, &token, &tenant, &f).is_err());
        assert!(open(b"another key", &token, &tenant, &filter()).is_err());
        let mut chars: Vec<char> = token.chars().collect();
        chars[3] = if chars[3] == 'A' { 'B' } else { 'A' };
        let forged: String = chars.into_iter().collect();
        assert!(open(key, &forged, &tenant, &filter()).is_err());
        assert!(open(key, "garbage!", &tenant, &filter()).is_err());
        let err = open(key, "", &tenant, &filter()).unwrap_err();
        assert_eq!(err.reason, reason::INVALID_PAGE_TOKEN);
    }

    #[test]
    fn event_tokens_are_bound_to_their_refund() {
        let key = b"0123456789abcdef0123456789abcdef";
        let tenant = TenantId::new("acme");
        let (a, b) = (RefundId::generate(), RefundId::generate());
        let token = seal_events(key, &tenant, &a, 42);
        assert_eq!(open_events(key, &token, &tenant, &a).unwrap(), 42);
        assert!(open_events(key, &token, &tenant, &b).is_err());
        assert!(open_events(key, &token, &TenantId::new("globex"), &a).is_err());
        // A ListRefunds token is not an events token.
        let list = seal(key, &tenant, &filter(), Utc::now(), &a);
        assert!(open_events(key, &list, &tenant, &a).is_err());
    }
}
