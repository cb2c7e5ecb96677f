//! The D24 simulator's fixture deposits: fixed, memorable ids and invoice ids, listed in one
//! table that `refund-gateway sandbox` shows ([`fixtures_table`]).
//!
//! The deposits of D24's own examples are kept (S001's card deposit `300604089` /
//! `test766106146` of 505.95 MXN; S003's card `300533647` / `newIUnit45328732` and cash
//! `300533646` / `newIUnit45328731`), so the documented requests work as written. The others
//! are `3000000NN` with an invoice id that says what they are for.

use std::fmt::Write as _;

use super::wire::{CardResult, DepositState};

/// S001: card (American Express), COMPLETED, 505.95 MXN. Card refunds answer SUCCESS.
pub const CARD_MXN: u64 = 300604089;
pub const CARD_MXN_INVOICE: &str = "test766106146";
/// S003: card (Visa), COMPLETED, 1000.00 MXN. Card refunds answer SUCCESS.
pub const CARD_MXN_1000: u64 = 300533647;
pub const CARD_MXN_1000_INVOICE: &str = "newIUnit45328732";
/// S003: cash (OXXO), COMPLETED, 250.00 MXN. Refunds need a bank account.
pub const CASH_MXN: u64 = 300533646;
pub const CASH_MXN_INVOICE: &str = "newIUnit45328731";
/// Card, COMPLETED, 800.00 MXN. Card refunds answer IN_PROGRESS and complete later.
pub const CARD_IN_PROGRESS: u64 = 300000001;
pub const CARD_IN_PROGRESS_INVOICE: &str = "inv-card-in-progress";
/// Card, COMPLETED, 300.00 MXN. Card refunds answer REJECTED ("Card expired", code "1").
pub const CARD_REJECTED: u64 = 300000002;
pub const CARD_REJECTED_INVOICE: &str = "inv-card-rejected";
/// Card, COMPLETED, 15000 CLP (no decimals).
pub const CARD_CLP: u64 = 300000003;
pub const CARD_CLP_INVOICE: &str = "inv-card-clp";
/// Bank transfer, COMPLETED, 25000 CLP. Refunds need a bank account.
pub const BANK_CLP: u64 = 300000004;
pub const BANK_CLP_INVOICE: &str = "inv-bank-clp";
/// Bank transfer (PIX), COMPLETED, 1500.00 BRL. Refunds need a bank account.
pub const BANK_BRL: u64 = 300000005;
pub const BANK_BRL_INVOICE: &str = "inv-bank-brl";
/// Card, COMPLETED, 120000.00 COP.
pub const CARD_COP: u64 = 300000006;
pub const CARD_COP_INVOICE: &str = "inv-card-cop";
/// Card, PENDING (not paid yet), 200.00 MXN: not refundable (801).
pub const PENDING_DEPOSIT: u64 = 300000007;
pub const PENDING_DEPOSIT_INVOICE: &str = "inv-pending";
/// Bank transfer, EXPIRED, 90.00 PEN: not refundable (801).
pub const EXPIRED_DEPOSIT: u64 = 300000008;
pub const EXPIRED_DEPOSIT_INVOICE: &str = "inv-expired";
/// Card, CANCELLED, 50.00 USD: not refundable (801).
pub const CANCELLED_DEPOSIT: u64 = 300000009;
pub const CANCELLED_DEPOSIT_INVOICE: &str = "inv-cancelled";
/// Card, FOR_REVIEW, 75.00 ARS: not refundable (801).
pub const FOR_REVIEW_DEPOSIT: u64 = 300000010;
pub const FOR_REVIEW_DEPOSIT_INVOICE: &str = "inv-for-review";

/// One fixture deposit.
#[derive(Clone, Copy, Debug)]
pub struct FixtureDeposit {
    pub id: u64,
    pub invoice_id: &'static str,
    pub status: DepositState,
    /// `local_amount`, decimal major units.
    pub amount: &'static str,
    pub currency: &'static str,
    pub usd_amount: &'static str,
    pub country: &'static str,
    pub payment_method: &'static str,
    pub payment_type: &'static str,
    /// What a card refund of it answers.
    pub card_result: CardResult,
    pub note: &'static str,
}

const AMEX: (&str, &str) = ("AE", "CREDIT_CARD");
const VISA: (&str, &str) = ("VI", "CREDIT_CARD");
const OXXO: (&str, &str) = ("OX", "CASH");
const BANK: (&str, &str) = ("BT", "BANK_TRANSFER");
const PIX: (&str, &str) = ("IX", "BANK_TRANSFER");

use CardResult::{InProgress, Rejected, Success};
use DepositState::{Cancelled, Completed, Expired, ForReview, Pending};

pub const DEPOSITS: &[FixtureDeposit] = &[
    FixtureDeposit {
        id: CARD_MXN,
        invoice_id: CARD_MXN_INVOICE,
        status: Completed,
        amount: "505.95",
        currency: "MXN",
        usd_amount: "25.30",
        country: "MX",
        payment_method: AMEX.0,
        payment_type: AMEX.1,
        card_result: Success,
        note: "card: refunds SUCCESS at once (D24's own example)",
    },
    FixtureDeposit {
        id: CARD_MXN_1000,
        invoice_id: CARD_MXN_1000_INVOICE,
        status: Completed,
        amount: "1000.00",
        currency: "MXN",
        usd_amount: "50.00",
        country: "MX",
        payment_method: VISA.0,
        payment_type: VISA.1,
        card_result: Success,
        note: "card: refunds SUCCESS at once (D24's own example)",
    },
    FixtureDeposit {
        id: CASH_MXN,
        invoice_id: CASH_MXN_INVOICE,
        status: Completed,
        amount: "250.00",
        currency: "MXN",
        usd_amount: "12.50",
        country: "MX",
        payment_method: OXXO.0,
        payment_type: OXXO.1,
        card_result: Success,
        note: "cash: bank_account needed; PENDING -> DELIVERED -> COMPLETED",
    },
    FixtureDeposit {
        id: CARD_IN_PROGRESS,
        invoice_id: CARD_IN_PROGRESS_INVOICE,
        status: Completed,
        amount: "800.00",
        currency: "MXN",
        usd_amount: "40.00",
        country: "MX",
        payment_method: VISA.0,
        payment_type: VISA.1,
        card_result: InProgress,
        note: "card: refunds IN_PROGRESS, COMPLETED later",
    },
    FixtureDeposit {
        id: CARD_REJECTED,
        invoice_id: CARD_REJECTED_INVOICE,
        status: Completed,
        amount: "300.00",
        currency: "MXN",
        usd_amount: "15.00",
        country: "MX",
        payment_method: VISA.0,
        payment_type: VISA.1,
        card_result: Rejected,
        note: "card: refunds REJECTED (\"Card expired\", code 1)",
    },
    FixtureDeposit {
        id: CARD_CLP,
        invoice_id: CARD_CLP_INVOICE,
        status: Completed,
        amount: "15000",
        currency: "CLP",
        usd_amount: "16.00",
        country: "CL",
        payment_method: VISA.0,
        payment_type: VISA.1,
        card_result: Success,
        note: "card, zero-decimal currency",
    },
    FixtureDeposit {
        id: BANK_CLP,
        invoice_id: BANK_CLP_INVOICE,
        status: Completed,
        amount: "25000",
        currency: "CLP",
        usd_amount: "26.50",
        country: "CL",
        payment_method: BANK.0,
        payment_type: BANK.1,
        card_result: Success,
        note: "bank transfer, zero-decimal currency; bank_account needed",
    },
    FixtureDeposit {
        id: BANK_BRL,
        invoice_id: BANK_BRL_INVOICE,
        status: Completed,
        amount: "1500.00",
        currency: "BRL",
        usd_amount: "270.00",
        country: "BR",
        payment_method: PIX.0,
        payment_type: PIX.1,
        card_result: Success,
        note: "PIX bank transfer; bank_account needed",
    },
    FixtureDeposit {
        id: CARD_COP,
        invoice_id: CARD_COP_INVOICE,
        status: Completed,
        amount: "120000.00",
        currency: "COP",
        usd_amount: "30.00",
        country: "CO",
        payment_method: VISA.0,
        payment_type: VISA.1,
        card_result: Success,
        note: "card",
    },
    FixtureDeposit {
        id: PENDING_DEPOSIT,
        invoice_id: PENDING_DEPOSIT_INVOICE,
        status: Pending,
        amount: "200.00",
        currency: "MXN",
        usd_amount: "10.00",
        country: "MX",
        payment_method: VISA.0,
        payment_type: VISA.1,
        card_result: Success,
        note: "not paid yet: not refundable (801)",
    },
    FixtureDeposit {
        id: EXPIRED_DEPOSIT,
        invoice_id: EXPIRED_DEPOSIT_INVOICE,
        status: Expired,
        amount: "90.00",
        currency: "PEN",
        usd_amount: "24.00",
        country: "PE",
        payment_method: BANK.0,
        payment_type: BANK.1,
        card_result: Success,
        note: "expired: not refundable (801)",
    },
    FixtureDeposit {
        id: CANCELLED_DEPOSIT,
        invoice_id: CANCELLED_DEPOSIT_INVOICE,
        status: Cancelled,
        amount: "50.00",
        currency: "USD",
        usd_amount: "50.00",
        country: "EC",
        payment_method: VISA.0,
        payment_type: VISA.1,
        card_result: Success,
        note: "cancelled: not refundable (801)",
    },
    FixtureDeposit {
        id: FOR_REVIEW_DEPOSIT,
        invoice_id: FOR_REVIEW_DEPOSIT_INVOICE,
        status: ForReview,
        amount: "75.00",
        currency: "ARS",
        usd_amount: "0.08",
        country: "AR",
        payment_method: VISA.0,
        payment_type: VISA.1,
        card_result: Success,
        note: "anti-fraud hold: not refundable (801)",
    },
];

/// The fixtures as a plain-text table.
pub fn fixtures_table() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "D24 deposits (payment_id = deposit_id, invoice_id)");
    let _ = writeln!(
        out,
        "  {:<10}  {:<21}  {:<10}  {:<13}  {:>16}  note",
        "deposit_id", "invoice_id", "status", "payment_type", "local_amount"
    );
    for d in DEPOSITS {
        let _ = writeln!(
            out,
            "  {:<10}  {:<21}  {:<10}  {:<13}  {:>16}  {}",
            d.id,
            d.invoice_id,
            d.status.as_str(),
            d.payment_type,
            format!("{} {}", d.amount, d.currency),
            d.note
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rust_decimal::Decimal;

    use super::*;
    use crate::currency;

    /// Ids and invoice ids are unique; amounts are exact in their currency; every deposit
    /// status appears among refundable and non-refundable ones; both kinds of method appear.
    #[test]
    fn fixtures_are_consistent() {
        let mut ids = HashSet::new();
        let mut invoices = HashSet::new();
        for d in DEPOSITS {
            assert!(ids.insert(d.id), "{} twice", d.id);
            assert!(invoices.insert(d.invoice_id), "{} twice", d.invoice_id);
            let amount: Decimal = d.amount.parse().unwrap();
            let exponent = currency::exponent(d.currency).unwrap();
            assert!(amount > Decimal::ZERO && amount.normalize().scale() <= exponent);
            let _: Decimal = d.usd_amount.parse().unwrap();
        }
        for status in [Completed, Pending, Expired, Cancelled, ForReview] {
            assert!(DEPOSITS.iter().any(|d| d.status == status), "{status:?}");
        }
        for result in CardResult::ALL {
            assert!(DEPOSITS.iter().any(|d| d.card_result == result));
        }
        assert!(DEPOSITS.iter().any(|d| d.payment_type == "CASH"));
        assert!(DEPOSITS.iter().any(|d| d.currency == "CLP"));
    }

    /// The table lists every deposit and invoice id.
    #[test]
    fn table_lists_every_fixture() {
        let table = fixtures_table();
        for d in DEPOSITS {
            assert!(table.contains(&d.id.to_string()));
            assert!(table.contains(d.invoice_id));
        }
        assert!(table.contains("15000 CLP"));
    }
}
