//! D24 deposits and refund request bodies.

use super::*;

/// The JSDK deposit fixture parses; the deposit table maps every status; only cards need
/// no bank account.
#[test]
fn deposits_parse_and_map() {
    let jsdk = r#"{"user_id":"4-6154733441441686128","deposit_id":300000001,"invoice_id":"4-3368819155598657863","country":"BR","currency":"USD","usd_amount":100.00,"local_amount":20.00,"payment_type":"BANK_TRANSFER","status":"PENDING","card_detail":{"brand":"VISA"},"payer":{"document":"1234567"}}"#;
    let deposit: Deposit = serde_json::from_str(jsdk).unwrap();
    let p = deposit.to_provider_payment().unwrap();
    assert_eq!(p.status, domain::PaymentStatus::Pending);
    assert_eq!(p.amount, Money::new(2000, Currency::parse("USD").unwrap()));
    assert!(p.needs_bank_account);
    assert_eq!(p.refunded, None);

    use domain::PaymentStatus as P;
    for (word, status) in [
        ("CREATED", P::Pending),
        ("PENDING", P::Pending),
        ("FOR_REVIEW", P::Pending),
        ("EARLY_RELEASED", P::Pending),
        ("EXPIRED", P::Canceled),
        ("CANCELLED", P::Canceled),
        ("COMPLETED", P::Captured),
        ("DECLINED", P::Failed),
        ("SOMETHING_NEW", P::Pending),
    ] {
        assert_eq!(deposit_payment_status(word), status, "{word}");
    }
    for t in ["CREDIT_CARD", "DEBIT_CARD", "credit_card"] {
        assert!(is_card_type(t), "{t}");
    }
    for t in ["BANK_TRANSFER", "CASH", "VOUCHER", "WALLET", ""] {
        assert!(!is_card_type(t), "{t}");
    }
}

/// Deposit amounts convert exactly, CLP without decimals; anything else is refused.
#[test]
fn deposit_amounts_convert_exactly() {
    let body = |amount: &str, currency: &str| {
        format!(
            r#"{{"deposit_id":1,"currency":"{currency}","local_amount":{amount},"payment_type":"CREDIT_CARD","status":"COMPLETED"}}"#
        )
    };
    for (amount, currency, minor) in [
        ("505.95", "MXN", 50595),
        ("1500", "CLP", 1500),
        ("1500.00", "CLP", 1500),
        ("\"250.50\"", "BRL", 25050),
        ("1e3", "COP", 100000),
    ] {
        let d: Deposit = serde_json::from_str(&body(amount, currency)).unwrap();
        let p = d.to_provider_payment().unwrap();
        assert_eq!(p.amount.minor, minor, "{amount} {currency}");
        assert_eq!(p.amount.currency.code(), currency);
        assert!(!p.needs_bank_account);
    }
    for (amount, currency) in [
        ("1500.5", "CLP"),
        ("1.005", "MXN"),
        ("0", "MXN"),
        ("-1", "MXN"),
        ("5", "XYZ"),
        ("1.234", "BHD"),
    ] {
        let d: Deposit = serde_json::from_str(&body(amount, currency)).unwrap();
        assert!(d.to_provider_payment().is_err(), "{amount} {currency}");
    }
}

/// The request carries the amount explicitly with the currency's own digits, the bank
/// account with its type, and leaves out what is empty.
#[test]
fn refund_request_body() {
    let mut r = refund("300533646", mxn(10000));
    r.payment.invoice_id = "newIUnit45328731".into();
    r.description = "Test refund over v3".into();
    r.bank_account = Some(domain::BankAccount {
        beneficiary: "Carlos Ramirez".into(),
        bank_code: "1".into(),
        branch: "9283".into(),
        account_number: "18293435".into(),
        account_type: BankAccountType::Saving,
    });
    let body = RefundRequest::for_refund(&r, 300533646, Some("https://gw/webhooks/d24/d24"));
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        r#"{"deposit_id":300533646,"invoice_id":"newIUnit45328731","amount":100.00,"bank_account":{"beneficiary":"Carlos Ramirez","bank_code":"1","branch":"9283","account_number":"18293435","account_type":"SAVING"},"comments":"Test refund over v3","notification_url":"https://gw/webhooks/d24/d24"}"#
    );
    let mut card = refund(
        "300533647",
        Money::new(1500, Currency::parse("CLP").unwrap()),
    );
    card.payment.invoice_id = "newIUnit45328732".into();
    assert_eq!(
        serde_json::to_string(&RefundRequest::for_refund(&card, 300533647, None)).unwrap(),
        r#"{"deposit_id":300533647,"invoice_id":"newIUnit45328732","amount":1500}"#
    );
}

/// Deposit ids are positive integers written plainly.
#[test]
fn deposit_ids() {
    assert_eq!(deposit_id("300533647"), Some(300533647));
    assert_eq!(deposit_id("1"), Some(1));
    for bad in [
        "",
        "0",
        "007",
        "-5",
        "+5",
        "5.0",
        "1e3",
        " 5",
        "abc",
        "99999999999999999999",
        "9223372036854775808",
    ] {
        assert_eq!(deposit_id(bad), None, "{bad}");
    }
}

/// Both error shapes parse, with the code as a number or a string.
#[test]
fn both_error_shapes_parse() {
    let flat = parse_error(
        r#"{"code":802,"description":"Amount to refund not valid","type":"INVALID_AMOUNT_TO_REFUND"}"#,
    )
    .unwrap();
    assert_eq!(
        flat,
        ErrorBody {
            code: Some(802),
            kind: Some("INVALID_AMOUNT_TO_REFUND".into()),
            message: "Amount to refund not valid".into(),
        }
    );
    let nested = parse_error(
        r#"{"error":{"code":"208","message":"Resource not found","details":["deposit"]}}"#,
    )
    .unwrap();
    assert_eq!(nested.code, Some(208));
    assert_eq!(nested.message, "Resource not found");
    let details =
        parse_error(r#"{"code":"804","description":"Missing bank account information","details":["bank_account"]}"#)
            .unwrap();
    assert_eq!(details.code, Some(804));
    for not_an_error in ["", "not json", "[]", "{}", r#"{"refund_id":1}"#, "null"] {
        assert_eq!(parse_error(not_an_error), None, "{not_an_error}");
    }
}

/// The code table: 104 is never a refusal; configuration codes are FAILED_PRECONDITION;
/// the refund codes map as documented; every documented code has an HTTP status.
#[test]
fn code_table() {
    assert_eq!(meaning(104), CodeMeaning::KeyAlreadyUsed);
    let refused = |c| match meaning(c) {
        CodeMeaning::Refused { code, reason, .. } => (code, reason),
        CodeMeaning::KeyAlreadyUsed => panic!("{c}"),
    };
    for c in [100, 102] {
        assert_eq!(
            refused(c),
            (
                ErrorCode::FailedPrecondition,
                reason::PROVIDER_AUTHENTICATION_FAILED
            )
        );
    }
    for c in [101, 103, 105, 200, 201, 203, 800] {
        assert_eq!(
            refused(c),
            (
                ErrorCode::FailedPrecondition,
                reason::PROVIDER_MISCONFIGURED
            ),
            "{c}"
        );
    }
    assert_eq!(
        refused(208),
        (ErrorCode::NotFound, reason::PAYMENT_NOT_FOUND)
    );
    assert_eq!(
        refused(801),
        (
            ErrorCode::FailedPrecondition,
            reason::PAYMENT_NOT_REFUNDABLE
        )
    );
    assert_eq!(
        refused(802),
        (
            ErrorCode::FailedPrecondition,
            reason::AMOUNT_EXCEEDS_REFUNDABLE
        )
    );
    assert_eq!(
        refused(803),
        (
            ErrorCode::FailedPrecondition,
            reason::PROVIDER_INSUFFICIENT_FUNDS
        )
    );
    assert_eq!(
        refused(804),
        (ErrorCode::InvalidArgument, reason::BANK_ACCOUNT_REQUIRED)
    );
    assert_eq!(refused(805).1, reason::PROVIDER_DECLINED);
    assert_eq!(refused(999).1, reason::PROVIDER_DECLINED);
    for info in CODES {
        assert!((400..=499).contains(&info.http_status), "{}", info.code);
        assert_eq!(code_info(info.code), Some(info));
    }
    assert_eq!(code_info(100).unwrap().http_status, 401);
    assert_eq!(code_info(999), None);
}

/// A notification names a refund by number or string.
#[test]
fn notifications_parse() {
    let n: Notification = serde_json::from_str(r#"{"refund_id": 168284}"#).unwrap();
    assert_eq!(n.refund_id.0, "168284");
    let n: Notification = serde_json::from_str(r#"{"refund_id":"80000001"}"#).unwrap();
    assert_eq!(n.refund_id.0, "80000001");
    for bad in [
        r#"{}"#,
        r#"{"refund_id":null}"#,
        "x",
        r#"{"refund_id":"a/b"}"#,
    ] {
        assert!(serde_json::from_str::<Notification>(bad).is_err(), "{bad}");
    }
}
