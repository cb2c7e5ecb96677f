//! D24's wire types and code tables against recorded and hand-written bodies.
use std::str::FromStr;

use chrono::Utc;

use super::*;
use crate::domain::{PaymentRef, TenantId};
use crate::providers::samples;

/// S003: the card example answer (`refund_id` a string).
const S003_CARD_SUCCESS: &str = r#"{
    "refund_id": "80000001",
    "deposit_id": 300604089,
    "merchant_invoice_id": "test766106146",
    "refund_info": {
        "type": "CREDIT_CARD",
        "result": "SUCCESS",
        "payment_method": "AE",
        "payment_method_name": "American Express",
        "amount": 505.95,
        "currency": "MXN",
        "created_at": "2021-02-05 22:10:45"
    }
}"#;

/// S001: the card IN_PROGRESS answer.
const S001_CARD_IN_PROGRESS: &str = r#"{"refund_id":"80000001","deposit_id":300604089,"merchant_invoice_id":"test766106146","refund_info": {"type":"CREDIT_CARD","result":"IN_PROGRESS","reason":"Check refund status or await its notification","payment_method":"AE","payment_method_name":"American Express","amount":505.95,"currency":"MXN","created_at":"2021-02-05 22:10:45" }}"#;

/// S001/S003: the bank/cash answer (`refund_id` a number).
const S003_CASH: &str = r#"{"refund_id":168284}"#;

/// D24-RS: a status read-back with an amount.
const RS_COMPLETED: &str = r#"{"deposit_id":300533569,"merchant_invoice_id":"84044","status":"COMPLETED","amount":100.00}"#;

/// D24-RS: the PENDING example, without an amount.
const RS_PENDING: &str =
    r#"{"deposit_id":300533569,"merchant_invoice_id":"84044","status":"PENDING"}"#;

fn mxn(minor: i64) -> Money {
    Money::new(minor, Currency::parse("MXN").unwrap())
}

fn refund(deposit: &str, amount: Money) -> Refund {
    let now = Utc::now();
    Refund::new_pending(
        TenantId::new("t"),
        "r",
        "d24",
        PaymentRef {
            payment_id: deposit.into(),
            payment_method_id: String::new(),
            invoice_id: "test766106146".into(),
        },
        amount,
        now,
    )
}

/// S003's card SUCCESS answer parses (string id, exact amount) and is a success.
#[test]
fn card_success_parses_and_succeeds() {
    let answer: RefundResponse = serde_json::from_str(S003_CARD_SUCCESS).unwrap();
    assert_eq!(answer.refund_id.0, "80000001");
    let info = answer.refund_info.as_ref().unwrap();
    assert_eq!(info.amount, Some(Decimal::from_str("505.95").unwrap()));
    assert_eq!(info.kind.as_deref(), Some("CREDIT_CARD"));
    let obs = answer.observe(&refund("300604089", mxn(50595)));
    let expected = samples::succeeded("80000001", "SUCCESS", mxn(50595), "300604089");
    assert_eq!(obs, expected);
}

/// S001's IN_PROGRESS answer is PROCESSING.
#[test]
fn card_in_progress_is_processing() {
    let answer: RefundResponse = serde_json::from_str(S001_CARD_IN_PROGRESS).unwrap();
    let obs = answer.observe(&refund("300604089", mxn(50595)));
    assert_eq!(obs.status, RefundStatus::Processing);
    assert_eq!(obs.provider_status.as_deref(), Some("IN_PROGRESS"));
    assert_eq!(obs.failure, None);
}

/// A REJECTED card answer is an accepted refund that FAILED, with the reason and the
/// reason code (string or number) kept.
#[test]
fn card_rejected_fails_with_reason_code() {
    for (code_json, code) in [(r#""1""#, "1"), ("57", "57")] {
        let json = format!(
            r#"{{"refund_id":"80000002","deposit_id":300604089,"refund_info":{{"type":"CREDIT_CARD","result":"REJECTED","reason":"Card expired","reason_code":{code_json},"amount":505.95,"currency":"MXN"}}}}"#
        );
        let answer: RefundResponse = serde_json::from_str(&json).unwrap();
        let obs = answer.observe(&refund("300604089", mxn(50595)));
        assert_eq!(obs.status, RefundStatus::Failed);
        let failure = obs.failure.unwrap();
        assert_eq!(failure.code, reason::PROVIDER_DECLINED);
        assert_eq!(failure.provider_code, code);
        assert_eq!(failure.provider_message, "Card expired");
        assert!(failure.message.contains("Card expired"));
    }
}

/// The bank/cash answer (`{refund_id}` as a number) is PROCESSING with the id as text.
#[test]
fn cash_answer_is_processing() {
    let answer: RefundResponse = serde_json::from_str(S003_CASH).unwrap();
    assert_eq!(answer.refund_id.0, "168284");
    let obs = answer.observe(&refund("300533646", mxn(10000)));
    assert_eq!(obs.status, RefundStatus::Processing);
    assert_eq!(obs.provider_refund_id.as_deref(), Some("168284"));
    assert_eq!(obs.provider_status, None);
    assert_eq!(obs.failure, None);
}

/// An answer about another deposit, amount or currency needs review once applied to
/// the refund (the integrity rule); an amount that cannot be one, at once.
#[test]
fn mismatching_create_answers_need_review() {
    let r = refund("300604089", mxn(50595));
    for (json, needle) in [
        (
            S003_CARD_SUCCESS.replace("300604089", "300604090"),
            "payment \"300604090\"",
        ),
        (
            S003_CARD_SUCCESS.replace("505.95", "505.96"),
            "amount 505.96 MXN instead of 505.95 MXN",
        ),
        (
            S003_CARD_SUCCESS.replace(r#""MXN""#, r#""USD""#),
            "currency USD instead of MXN",
        ),
        (
            S003_CARD_SUCCESS.replace("505.95", "505.955"),
            "amount 505.955 MXN instead of 505.95 MXN",
        ),
        (
            S003_CARD_SUCCESS.replace(r#""MXN""#, r#""XXY""#),
            "currency \"XXY\"",
        ),
    ] {
        let answer: RefundResponse = serde_json::from_str(&json).unwrap();
        samples::assert_contradicted(&r, &answer.observe(&r), &json, needle, "80000001");
    }
}

/// Ids that cannot be one (negative, empty, unsafe in a path, fractional) do not parse.
#[test]
fn bad_refund_ids_do_not_parse() {
    for json in [
        r#"{"refund_id":-1}"#,
        r#"{"refund_id":""}"#,
        r#"{"refund_id":"../x"}"#,
        r#"{"refund_id":"a b"}"#,
        r#"{"refund_id":1.5}"#,
        r#"{"refund_id":null}"#,
        r#"{}"#,
        r#"{"code":802,"description":"Amount to refund not valid"}"#,
    ] {
        assert!(
            serde_json::from_str::<RefundResponse>(json).is_err(),
            "{json}"
        );
    }
}

/// Status read-backs parse with and without an amount, and every status maps.
#[test]
fn status_bodies_parse_with_and_without_amount() {
    let completed: RefundStatusResponse = serde_json::from_str(RS_COMPLETED).unwrap();
    assert_eq!(completed.amount, Some(Decimal::from_str("100.00").unwrap()));
    assert_eq!(completed.merchant_invoice_id.as_deref(), Some("84044"));
    let pending: RefundStatusResponse = serde_json::from_str(RS_PENDING).unwrap();
    assert_eq!(pending.amount, None);
    let r = refund("300533569", mxn(10000));
    let obs = completed.observe_refund(&r, "168284").unwrap();
    assert_eq!(obs.status, RefundStatus::Succeeded);
    assert_eq!(obs.provider_status.as_deref(), Some("COMPLETED"));
    let obs = pending.observe_refund(&r, "168284").unwrap();
    assert_eq!(obs.status, RefundStatus::Processing);
    let with_extra: RefundStatusResponse = serde_json::from_str(
        r#"{"deposit_id":1,"status":"DELIVERED","amount":"5","voucher":"abc","new":1}"#,
    )
    .unwrap();
    assert_eq!(with_extra.status, "DELIVERED");
}

/// The full status table (docs/PROVIDERS.md section 4).
#[test]
fn every_refund_status_maps() {
    let table = [
        ("PENDING", RefundStatus::Processing, None),
        ("INCORRECT_DETAILS", RefundStatus::Processing, None),
        ("DELIVERED", RefundStatus::Processing, None),
        ("COMPLETED", RefundStatus::Succeeded, None),
        (
            "REJECTED",
            RefundStatus::Failed,
            Some(reason::PROVIDER_DECLINED),
        ),
        (
            "CANCELLED",
            RefundStatus::Canceled,
            Some(reason::REFUND_CANCELED),
        ),
    ];
    assert_eq!(table.len(), RefundState::ALL.len());
    for (word, status, failure) in table {
        let body = RefundStatusResponse {
            deposit_id: Some(1),
            merchant_invoice_id: None,
            status: word.into(),
            amount: None,
        };
        let obs = body.observe_status("7").unwrap();
        assert_eq!(obs.status, status, "{word}");
        assert_eq!(obs.provider_status.as_deref(), Some(word));
        assert_eq!(obs.failure.map(|f| f.code), failure.map(str::to_owned));
        assert_eq!(RefundState::parse(word).unwrap().as_str(), word);
    }
    let odd = RefundStatusResponse {
        deposit_id: Some(1),
        merchant_invoice_id: None,
        status: "DECLINED".into(),
        amount: None,
    };
    assert!(odd.observe_status("7").is_err());
}

/// A read-back about another deposit or amount needs review once applied to the refund
/// (the integrity rule); a missing amount is fine.
#[test]
fn mismatching_read_backs_need_review() {
    let r = refund("300533569", mxn(10000));
    let other: RefundStatusResponse =
        serde_json::from_str(&RS_COMPLETED.replace("100.00", "100.01")).unwrap();
    let obs = other.observe_refund(&r, "1").unwrap();
    assert_eq!(obs.amount, Some(mxn(10001)));
    let after = r.observe(&obs, Utc::now()).unwrap();
    assert_eq!(after.status, RefundStatus::RequiresReview);
    assert_eq!(after.failure.unwrap().code, reason::PROVIDER_MISMATCH);
    let elsewhere: RefundStatusResponse =
        serde_json::from_str(&RS_COMPLETED.replace("300533569", "300533570")).unwrap();
    let obs = elsewhere.observe_refund(&r, "1").unwrap();
    let after = r.observe(&obs, Utc::now()).unwrap();
    assert_eq!(after.status, RefundStatus::RequiresReview);
    let fine: RefundStatusResponse = serde_json::from_str(RS_COMPLETED).unwrap();
    let obs = fine.observe_refund(&r, "1").unwrap();
    assert_eq!(
        r.observe(&obs, Utc::now()).unwrap().status,
        RefundStatus::Succeeded
    );
    let pending: RefundStatusResponse = serde_json::from_str(RS_PENDING).unwrap();
    let obs = pending.observe_refund(&r, "1").unwrap();
    assert_eq!(obs.amount, None);
    assert_eq!(
        r.observe(&obs, Utc::now()).unwrap().status,
        RefundStatus::Processing
    );
}

/// The record used to recognise a lost submission names the deposit and the amount.
#[test]
fn record_names_deposit_and_amount() {
    let body: RefundStatusResponse = serde_json::from_str(RS_COMPLETED).unwrap();
    let record = body.record("168284").unwrap();
    assert_eq!(record.payment_id, "300533569");
    assert_eq!(record.amount, Some(Decimal::from_str("100.00").unwrap()));
    assert_eq!(
        record.observation.provider_refund_id.as_deref(),
        Some("168284")
    );
    let no_deposit: RefundStatusResponse =
        serde_json::from_str(r#"{"status":"COMPLETED"}"#).unwrap();
    assert!(no_deposit.record("1").is_err());
}

mod requests;
