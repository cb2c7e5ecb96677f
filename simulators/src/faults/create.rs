//! The refund-create switches: what happens before and after a simulator applies a refund
//! (failures, delays, rewritten or dropped answers).

use std::str::FromStr as _;

use axum::{
    body::{Body, Bytes},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use rust_decimal::Decimal;

use super::{FaultCell, Faults, MAX_BODY, Spec, Target, sleep_ms};

/// Runs a refund create's work in a task of its own, so it goes on when the client goes
/// away (a provider does not stop processing a request because its client timed out).
pub async fn detached<F>(work: F) -> Response
where
    F: Future<Output = Response> + Send + 'static,
{
    tokio::spawn(work).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "sandbox refund create panicked");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })
}

/// The switches one refund create is subject to (none when no switch acts on creates).
#[derive(Clone, Debug)]
pub struct CreateFaults {
    faults: Option<Faults>,
    spec: Spec,
}

impl CreateFaults {
    /// Takes the switches for one refund create (counts one of `times`).
    pub fn take(cell: &FaultCell, spec: &Spec) -> Self {
        Self {
            faults: cell.take(Target::RefundCreate),
            spec: *spec,
        }
    }

    /// Before the refund is applied: the answer to give instead of applying it, if any;
    /// otherwise waits `refund_delay_before_apply_ms` and returns `None`.
    pub async fn before_apply(&self) -> Option<Response> {
        let f = self.faults.as_ref()?;
        if let Some(status) = f.fail_all_status {
            return Some(
                self.finish(
                    self.spec
                        .fault_answer(status, status == 429, f.retry_after_s),
                )
                .await,
            );
        }
        if let Some(status) = f.rate_limit_status {
            let after = Some(f.retry_after_s.unwrap_or(1));
            return Some(
                self.finish(self.spec.fault_answer(status, true, after))
                    .await,
            );
        }
        if let Some(status) = f.fail_before_apply_status {
            return Some(
                self.finish(
                    self.spec
                        .fault_answer(status, status == 429, f.retry_after_s),
                )
                .await,
            );
        }
        sleep_ms(f.refund_delay_before_apply_ms).await;
        None
    }

    /// After the refund was applied (or refused): the answer to give instead of `answer`.
    pub async fn after_apply(&self, answer: Response) -> Response {
        let Some(f) = self.faults.as_ref() else {
            return answer;
        };
        sleep_ms(f.refund_delay_ms).await;
        if let Some(status) = f.fail_after_apply_status {
            return self
                .finish(
                    self.spec
                        .fault_answer(status, status == 429, f.retry_after_s),
                )
                .await;
        }
        let rewrites = f.misreport_refund_amount
            || f.malformed_refund_body
            || f.corrupt_refund_body
            || f.drop_after_apply;
        if !rewrites || !answer.status().is_success() {
            return self.finish(answer).await;
        }
        let (parts, body) = answer.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY)
            .await
            .unwrap_or_default();
        let bytes = if f.misreport_refund_amount {
            misreport(&bytes, self.spec.amount_pointers)
        } else {
            bytes
        };
        let json = [(header::CONTENT_TYPE, "application/json")];
        let response = if f.malformed_refund_body {
            (
                StatusCode::OK,
                json,
                r#"{"sandbox_fault":"malformed_refund_body","data":null}"#,
            )
                .into_response()
        } else if f.corrupt_refund_body {
            (StatusCode::OK, json, bytes.slice(..bytes.len() / 2)).into_response()
        } else if f.drop_after_apply {
            dropped(bytes)
        } else {
            Response::from_parts(parts, Body::from(bytes))
        };
        self.finish(response).await
    }

    /// Every answer to a create waits `delay_ms` too.
    async fn finish(&self, response: Response) -> Response {
        if let Some(f) = &self.faults {
            sleep_ms(f.delay_ms).await;
        }
        response
    }
}

/// A 200 whose body stops half-way with an error: the server closes the connection without
/// finishing the answer, and the client reports a broken body.
fn dropped(bytes: Bytes) -> Response {
    let half = bytes.slice(..bytes.len() / 2);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: connection dropped after the refund was applied",
        )),
    ];
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures::stream::iter(chunks)),
    )
        .into_response()
}

/// The answer with its amount one minor unit higher (an integer amount gains 1; a decimal
/// one gains one unit of its last digit). Unchanged when it has no amount.
pub(super) fn misreport(bytes: &Bytes, pointers: &[&str]) -> Bytes {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return bytes.clone();
    };
    let Some(pointer) = pointers.iter().find(|p| value.pointer(p).is_some()) else {
        return bytes.clone();
    };
    let Some(amount) = value.pointer_mut(pointer) else {
        return bytes.clone();
    };
    let bumped = match amount {
        serde_json::Value::Number(n) => bump(&n.to_string())
            .and_then(|t| serde_json::Number::from_str(&t).ok())
            .map(serde_json::Value::Number),
        serde_json::Value::String(s) => bump(s).map(serde_json::Value::String),
        _ => None,
    };
    if let Some(bumped) = bumped {
        *amount = bumped;
    }
    serde_json::to_vec(&value).map_or_else(|_| bytes.clone(), Bytes::from)
}

fn bump(text: &str) -> Option<String> {
    let d = Decimal::from_str(text).ok()?;
    Some((d + Decimal::new(1, d.scale())).to_string())
}
