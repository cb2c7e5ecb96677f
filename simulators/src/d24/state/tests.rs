//! Tests of the D24 simulator's refund rules and status steps.

use std::str::FromStr;

use super::*;
use crate::d24::fixtures::*;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn new(deposit: u64, invoice: &str, amount: Option<&str>) -> NewRefund {
    NewRefund {
        deposit_id: deposit,
        invoice_id: invoice.into(),
        amount: amount.map(dec),
        bank_account: None,
        comments: None,
        notification_url: None,
    }
}

fn bank() -> serde_json::Value {
    serde_json::json!({"beneficiary":"Carlos Ramirez","bank_code":1,"branch":"9283","account_number":"18293435","account_type":"SAVING"})
}

/// Partial refunds add up to the deposit and not a cent more; rejected and cancelled
/// ones free their amount.
#[test]
fn partial_refunds_stop_at_the_deposit_amount() {
    let mut s = State::with_fixtures();
    let now = Utc::now();
    for _ in 0..3 {
        s.create_refund(
            new(CARD_MXN_1000, CARD_MXN_1000_INVOICE, Some("300.00")),
            None,
            now,
        )
        .unwrap();
    }
    assert_eq!(
        s.create_refund(
            new(CARD_MXN_1000, CARD_MXN_1000_INVOICE, Some("100.01")),
            None,
            now
        ),
        Err(802)
    );
    let last = s
        .create_refund(
            new(CARD_MXN_1000, CARD_MXN_1000_INVOICE, Some("100")),
            None,
            now,
        )
        .unwrap();
    assert_eq!(s.refunded(CARD_MXN_1000), dec("1000.00"));
    assert_eq!(
        s.create_refund(new(CARD_MXN_1000, CARD_MXN_1000_INVOICE, None), None, now),
        Err(802)
    );
    s.set_status(last.id, RefundState::Rejected, now);
    assert_eq!(s.refunded(CARD_MXN_1000), dec("900.00"));
    assert!(
        s.create_refund(
            new(CARD_MXN_1000, CARD_MXN_1000_INVOICE, Some("100")),
            None,
            now
        )
        .is_ok()
    );
    assert_eq!(s.stats.refunds_created, 5);
}

/// The documented refusals: 208 (unknown deposit or invoice), 801 (not completed), 804
/// (no bank account for cash), 802 (bad amounts), 202 (bad bank account or comments).
#[test]
fn refusals() {
    let mut s = State::with_fixtures();
    let now = Utc::now();
    let refuse = |s: &mut State, n: NewRefund| s.create_refund(n, None, now).unwrap_err();
    assert_eq!(refuse(&mut s, new(1, "x", None)), 208);
    assert_eq!(refuse(&mut s, new(CARD_MXN, "other-invoice", None)), 208);
    for (d, i) in [
        (PENDING_DEPOSIT, PENDING_DEPOSIT_INVOICE),
        (EXPIRED_DEPOSIT, EXPIRED_DEPOSIT_INVOICE),
        (CANCELLED_DEPOSIT, CANCELLED_DEPOSIT_INVOICE),
        (FOR_REVIEW_DEPOSIT, FOR_REVIEW_DEPOSIT_INVOICE),
    ] {
        assert_eq!(refuse(&mut s, new(d, i, None)), 801, "{d}");
    }
    assert_eq!(
        refuse(&mut s, new(CASH_MXN, CASH_MXN_INVOICE, Some("100"))),
        804
    );
    for amount in ["0", "-1", "0.001", "505.96"] {
        assert_eq!(
            refuse(&mut s, new(CARD_MXN, CARD_MXN_INVOICE, Some(amount))),
            802,
            "{amount}"
        );
    }
    assert_eq!(
        refuse(&mut s, new(CARD_CLP, CARD_CLP_INVOICE, Some("100.5"))),
        802
    );
    let mut bad_account = new(CASH_MXN, CASH_MXN_INVOICE, Some("100"));
    bad_account.bank_account = Some(serde_json::json!({"beneficiary":"x","account_type":"SAVING"}));
    assert_eq!(refuse(&mut s, bad_account), 202);
    let mut long = new(CARD_MXN, CARD_MXN_INVOICE, None);
    long.comments = Some("x".repeat(201));
    assert_eq!(refuse(&mut s, long), 202);
    assert_eq!(s.stats.refunds_created, 0);
    assert!(s.used_keys.is_empty());
}

/// A key that created a refund answers 104 afterwards, before any other rule; a key
/// whose request was refused is not used.
#[test]
fn idempotency_keys() {
    let mut s = State::with_fixtures();
    let now = Utc::now();
    assert_eq!(
        s.create_refund(
            new(CARD_MXN, CARD_MXN_INVOICE, Some("999")),
            Some("k1"),
            now
        ),
        Err(802)
    );
    let first = s
        .create_refund(new(CARD_MXN, CARD_MXN_INVOICE, None), Some("k1"), now)
        .unwrap();
    assert_eq!(s.used_keys["k1"], first.id);
    // The deposit is now fully refunded: the repeat must still answer 104, not 802.
    assert_eq!(
        s.create_refund(new(CARD_MXN, CARD_MXN_INVOICE, None), Some("k1"), now),
        Err(104)
    );
    assert_eq!(
        s.create_refund(new(1, "x", None), Some("k1"), now),
        Err(104)
    );
    assert_eq!(s.stats.idempotency_key_reuses, 2);
    assert_eq!(s.stats.refunds_created, 1);
}

/// Card refunds take their deposit's result (or IN_PROGRESS with the switch); bank/cash
/// refunds start PENDING and step to DELIVERED then COMPLETED.
#[test]
fn results_and_steps() {
    let mut s = State::with_fixtures();
    let now = Utc::now();
    let ok = s
        .create_refund(new(CARD_MXN, CARD_MXN_INVOICE, Some("5")), None, now)
        .unwrap();
    assert_eq!(
        (ok.card, ok.status, ok.id),
        (true, RefundState::Completed, 80000001)
    );
    let rejected = s
        .create_refund(new(CARD_REJECTED, CARD_REJECTED_INVOICE, None), None, now)
        .unwrap();
    assert_eq!(rejected.status, RefundState::Rejected);
    assert_eq!(rejected.reason_code.as_deref(), Some("1"));
    assert_eq!(s.refunded(CARD_REJECTED), Decimal::ZERO);
    s.timing.card_in_progress = true;
    let slow = s
        .create_refund(new(CARD_MXN, CARD_MXN_INVOICE, Some("5")), None, now)
        .unwrap();
    assert_eq!(slow.status, RefundState::Pending);
    assert_eq!(s.next_step(&slow), Some((RefundState::Completed, 2_000)));

    let mut cash = new(CASH_MXN, CASH_MXN_INVOICE, Some("100"));
    cash.bank_account = Some(bank());
    let cash = s.create_refund(cash, None, now).unwrap();
    assert_eq!(
        (cash.card, cash.status, cash.id),
        (false, RefundState::Pending, 168284)
    );
    assert_eq!(s.next_step(&cash), Some((RefundState::Delivered, 1_000)));
    let delivered = s
        .step(0, cash.id, cash.version, RefundState::Delivered, now)
        .unwrap();
    assert_eq!(
        s.next_step(&delivered),
        Some((RefundState::Completed, 2_000))
    );
    // A step planned on an old version does nothing.
    assert_eq!(
        s.step(0, cash.id, cash.version, RefundState::Completed, now),
        None
    );
    assert_eq!(
        s.step(1, cash.id, delivered.version, RefundState::Completed, now),
        None
    );
    s.timing.completed_after_ms = None;
    assert_eq!(s.next_step(&delivered), None);
    assert_eq!(delivered.history.len(), 2);
}

/// Timing is validated.
#[test]
fn timing_is_checked() {
    assert!(Timing::default().check().is_ok());
    assert!(
        Timing {
            notify_max_retries: 11,
            ..Timing::default()
        }
        .check()
        .is_err()
    );
}

/// The order of the key and amount checks: by default a repeat of a landed full refund
/// answers 104; with `amount_before_key` it answers 802 (the deposit is used up). A forced
/// error code answers every create without applying anything.
#[test]
fn check_order_and_forced_codes() {
    let now = Utc::now();
    for (amount_first, repeat) in [(false, 104), (true, 802)] {
        let mut s = State::with_fixtures();
        s.timing.amount_before_key = amount_first;
        s.create_refund(new(CARD_MXN, CARD_MXN_INVOICE, None), Some("k"), now)
            .unwrap();
        assert_eq!(
            s.create_refund(new(CARD_MXN, CARD_MXN_INVOICE, None), Some("k"), now),
            Err(repeat)
        );
        assert_eq!(s.stats.refunds_created, 1);
    }
    let mut s = State::with_fixtures();
    s.timing.refund_error_code = Some(999);
    assert_eq!(
        s.create_refund(new(CARD_MXN, CARD_MXN_INVOICE, None), Some("k"), now),
        Err(999)
    );
    assert!(s.refunds.is_empty());
}

/// The in-flight high-water mark counts the POSTs of one key at the same time.
#[test]
fn in_flight_high_water_per_key() {
    let mut s = State::with_fixtures();
    s.post_started("a");
    s.post_started("a");
    s.post_ended("a");
    s.post_started("b");
    s.post_ended("a");
    s.post_started("a");
    s.post_ended("a");
    s.post_ended("b");
    assert_eq!(s.stats.max_in_flight_by_key.get("a"), Some(&2));
    assert_eq!(s.stats.max_in_flight_by_key.get("b"), Some(&1));
    assert_eq!(s.stats.max_in_flight_per_key, 2);
    assert!(s.in_flight_by_key.is_empty());
}
