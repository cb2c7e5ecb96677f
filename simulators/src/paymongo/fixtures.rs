//! The PayMongo simulator's fixtures: payments with fixed ids that say what they are, listed
//! in one table that the README and `refund-gateway sandbox` show ([`fixtures_table`]).
//!
//! The payment of PayMongo's own refund example (S004, `pay_qOShdAuD3p8tKa6Ac4SRfbjs`) is kept
//! so the documented example works as written; the other ids are `pay_Sandbox` + what the
//! payment is + its amount in centavos. Amounts are centavos of PHP.

use std::fmt::Write as _;

use super::state::{PaymentStatus, RefundStatus};

/// When every fixture was made (2025-02-01T12:00:00Z).
pub const CREATED_AT: i64 = 1_738_411_200;

/// paid, ₱100.00: the payment of PayMongo's refund example (S004).
pub const PAID_S004: &str = "pay_qOShdAuD3p8tKa6Ac4SRfbjs";
/// paid, ₱500.00.
pub const PAID_50000: &str = "pay_SandboxPaid50000";
/// paid, ₱1,234.56.
pub const PAID_123456: &str = "pay_SandboxPaid123456";
/// paid, ₱250.00.
pub const PAID_25000: &str = "pay_SandboxPaid25000";
/// paid, ₱1,000.00, with ₱300.00 refunded outside the gateway (and a failed ₱200.00 refund
/// that does not count): ₱700.00 left.
pub const PARTLY_REFUNDED: &str = "pay_SandboxPartlyRefunded100000";
/// paid, ₱250.00, refunded in full outside the gateway.
pub const FULLY_REFUNDED: &str = "pay_SandboxFullyRefunded25000";
/// pending, ₱300.00: not refundable.
pub const PENDING: &str = "pay_SandboxPending30000";
/// failed, ₱150.00: not refundable.
pub const FAILED: &str = "pay_SandboxFailed15000";
/// paid, ₱400.00, but its refund window has passed: `allowed_date_exceeded`.
pub const WINDOW_PASSED: &str = "pay_SandboxWindowPassed40000";
/// paid, ₱600.00, but the account balance cannot fund a refund:
/// `available_balance_insufficient`.
pub const LOW_BALANCE: &str = "pay_SandboxLowBalance60000";

/// One fixture payment.
#[derive(Clone, Copy, Debug)]
pub struct FixturePayment {
    pub id: &'static str,
    pub status: PaymentStatus,
    /// Centavos.
    pub amount: i64,
    /// The refusal every refund of it gets.
    pub refund_error: Option<&'static str>,
    /// What it is for (also its `description`).
    pub note: &'static str,
}

/// One refund made outside the gateway.
#[derive(Clone, Copy, Debug)]
pub struct FixtureRefund {
    pub id: &'static str,
    pub payment_id: &'static str,
    pub amount: i64,
    pub status: RefundStatus,
}

pub const PAYMENTS: &[FixturePayment] = &[
    FixturePayment {
        id: PAID_S004,
        status: PaymentStatus::Paid,
        amount: 10000,
        refund_error: None,
        note: "refundable (PayMongo's own example)",
    },
    FixturePayment {
        id: PAID_50000,
        status: PaymentStatus::Paid,
        amount: 50000,
        refund_error: None,
        note: "refundable, in full or in parts",
    },
    FixturePayment {
        id: PAID_123456,
        status: PaymentStatus::Paid,
        amount: 123456,
        refund_error: None,
        note: "refundable",
    },
    FixturePayment {
        id: PAID_25000,
        status: PaymentStatus::Paid,
        amount: 25000,
        refund_error: None,
        note: "refundable",
    },
    FixturePayment {
        id: PARTLY_REFUNDED,
        status: PaymentStatus::Paid,
        amount: 100000,
        refund_error: None,
        note: "300.00 refunded outside the gateway (+ a failed 200.00): 700.00 left",
    },
    FixturePayment {
        id: FULLY_REFUNDED,
        status: PaymentStatus::Paid,
        amount: 25000,
        refund_error: None,
        note: "refunded in full outside the gateway: nothing left",
    },
    FixturePayment {
        id: PENDING,
        status: PaymentStatus::Pending,
        amount: 30000,
        refund_error: None,
        note: "not paid yet: not refundable",
    },
    FixturePayment {
        id: FAILED,
        status: PaymentStatus::Failed,
        amount: 15000,
        refund_error: None,
        note: "failed: not refundable",
    },
    FixturePayment {
        id: WINDOW_PASSED,
        status: PaymentStatus::Paid,
        amount: 40000,
        refund_error: Some("allowed_date_exceeded"),
        note: "refunds refused: allowed_date_exceeded",
    },
    FixturePayment {
        id: LOW_BALANCE,
        status: PaymentStatus::Paid,
        amount: 60000,
        refund_error: Some("available_balance_insufficient"),
        note: "refunds refused: available_balance_insufficient",
    },
];

pub const REFUNDS: &[FixtureRefund] = &[
    FixtureRefund {
        id: "ref_SandboxOutside30000",
        payment_id: PARTLY_REFUNDED,
        amount: 30000,
        status: RefundStatus::Succeeded,
    },
    FixtureRefund {
        id: "ref_SandboxOutsideFailed20000",
        payment_id: PARTLY_REFUNDED,
        amount: 20000,
        status: RefundStatus::Failed,
    },
    FixtureRefund {
        id: "ref_SandboxFullRefund25000",
        payment_id: FULLY_REFUNDED,
        amount: 25000,
        status: RefundStatus::Succeeded,
    },
];

/// The fixtures as a table for people.
pub fn fixtures_table() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "PayMongo payments");
    let _ = writeln!(
        out,
        "  {:<33} {:<8} {:>12}  note",
        "payment_id", "status", "amount"
    );
    for p in PAYMENTS {
        let amount = format!("{}.{:02} PHP", p.amount / 100, p.amount % 100);
        let _ = writeln!(
            out,
            "  {:<33} {:<8} {:>12}  {}",
            p.id,
            p.status.as_str(),
            amount,
            p.note
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids are unique PayMongo-shaped ids; outside refunds belong to fixture payments and fit.
    #[test]
    fn fixtures_are_consistent() {
        let mut ids: Vec<_> = PAYMENTS.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), PAYMENTS.len());
        for p in PAYMENTS {
            let tail = p.id.strip_prefix("pay_").unwrap();
            assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric()), "{}", p.id);
            assert!(p.amount >= 100);
        }
        for r in REFUNDS {
            let p = PAYMENTS.iter().find(|p| p.id == r.payment_id).unwrap();
            assert!(r.amount <= p.amount);
            assert!(r.id.starts_with("ref_"));
        }
        let table = fixtures_table();
        assert!(
            table.contains(PARTLY_REFUNDED) && table.contains("1000.00"),
            "{table}"
        );
    }
}
