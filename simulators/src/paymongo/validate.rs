//! Validation of a refund create's attributes, as PayMongo does it before anything else:
//! every problem reported at once (PM-ERR), nothing stored against the idempotency key.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::state::{Answer, MAX_NOTES, MIN_REFUND, REASONS, error_item};

/// The validated attributes of a refund create.
pub(super) struct NewRefund {
    pub(super) amount: i64,
    pub(super) payment_id: String,
    pub(super) reason: String,
    pub(super) notes: Option<String>,
    pub(super) metadata: Option<BTreeMap<String, String>>,
}

/// Checks a create's attributes, reporting every problem (PM-ERR: several errors at once).
pub(super) fn validate(attributes: &Value) -> Result<NewRefund, Answer> {
    let mut errors = Vec::new();
    let amount = match attributes.get("amount") {
        None | Some(Value::Null) => {
            errors.push(error_item(
                "parameter_required",
                "The amount is required.",
                Some("amount"),
            ));
            None
        }
        Some(v) => match v.as_i64() {
            None => {
                errors.push(error_item(
                    "parameter_data_type_invalid",
                    "The amount must be an integer.",
                    Some("amount"),
                ));
                None
            }
            Some(a) if a < MIN_REFUND => {
                errors.push(error_item(
                    "parameter_below_minimum",
                    &format!("The amount cannot be less than {MIN_REFUND}."),
                    Some("amount"),
                ));
                None
            }
            Some(a) => Some(a),
        },
    };
    let payment_id = match attributes.get("payment_id") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        None | Some(Value::Null) => {
            errors.push(error_item(
                "parameter_required",
                "The payment_id is required.",
                Some("payment_id"),
            ));
            None
        }
        Some(_) => {
            errors.push(error_item(
                "parameter_data_type_invalid",
                "The payment_id must be a string.",
                Some("payment_id"),
            ));
            None
        }
    };
    let reason = match attributes.get("reason") {
        Some(Value::String(s)) if REASONS.contains(&s.as_str()) => Some(s.clone()),
        None | Some(Value::Null) => {
            errors.push(error_item(
                "parameter_required",
                "The reason is required.",
                Some("reason"),
            ));
            None
        }
        Some(_) => {
            errors.push(error_item(
                "parameter_invalid",
                "The reason passed is invalid. Possible values are duplicate, fraudulent, \
                 requested_by_customer and others.",
                Some("reason"),
            ));
            None
        }
    };
    let notes = match attributes.get("notes") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() > MAX_NOTES => {
            errors.push(error_item(
                "parameter_above_maximum",
                &format!("The notes cannot be longer than {MAX_NOTES} characters."),
                Some("notes"),
            ));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(error_item(
                "parameter_data_type_invalid",
                "The notes must be a string.",
                Some("notes"),
            ));
            None
        }
    };
    let metadata = match attributes.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) if map.values().all(Value::is_string) => Some(
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect(),
        ),
        Some(_) => {
            errors.push(error_item(
                "parameter_data_type_invalid",
                "The metadata must be an object with string values only.",
                Some("metadata"),
            ));
            None
        }
    };
    match (amount, payment_id, reason) {
        (Some(amount), Some(payment_id), Some(reason)) if errors.is_empty() => Ok(NewRefund {
            amount,
            payment_id,
            reason,
            notes,
            metadata,
        }),
        _ => Err(Answer {
            status: 400,
            body: json!({ "errors": errors }),
        }),
    }
}

/// The `data.attributes` of a create body, or the error to answer.
pub fn create_attributes(body: &[u8]) -> Result<Value, Answer> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        Answer::error(
            400,
            "parameter_format_invalid",
            "The request body is not valid JSON.",
            None,
        )
    })?;
    match value.get("data").and_then(|d| d.get("attributes")) {
        Some(attributes @ Value::Object(_)) => Ok(attributes.clone()),
        _ => Err(Answer::error(
            400,
            "parameter_required",
            "The data.attributes object is required.",
            Some("data.attributes"),
        )),
    }
}
