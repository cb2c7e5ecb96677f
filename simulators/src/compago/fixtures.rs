//! The Compago simulator's fixtures: fixed, easy-to-type UUIDs, listed in one table that the
//! README and `refund-gateway sandbox` show ([`fixtures_table`]).
//!
//! The ids of the documented examples are kept (the active method
//! `aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee`, payment `11111111-2222-3333-4444-555555555555` of
//! 500 MXN, refunded payment `66666666-7777-8888-9999-000000000000` of 250 MXN), so the curl
//! examples of Compago's pages work against the simulator as written. The other ids repeat one
//! hex digit.

use std::fmt::Write as _;

use super::state::{MethodStatus, PaymentStatus};

/// The active (chargeable, refundable) payment method: the one of Compago's examples.
pub const ACTIVE_METHOD: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
/// A revoked payment method (the active one's id backwards).
pub const REVOKED_METHOD: &str = "ffffffff-eeee-dddd-cccc-bbbbbbbbbbbb";
/// A payment method whose checkout was never completed.
pub const PENDING_METHOD: &str = "cccccccc-cccc-cccc-cccc-cccccccccccc";
/// A payment method whose checkout link expired.
pub const EXPIRED_METHOD: &str = "eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee";
/// The load-test payment method (ACTIVE): ANY payment UUID under it exists, created on first
/// sight (read or refund) as CONFIRMED [`LOAD_TEST_AMOUNT`] MXN. Benchmarks use it to refund
/// fresh payments without creating them first. It reads "bench" in hex-speak, and is a valid
/// version-4 UUID.
pub const LOAD_TEST_METHOD: &str = "0000000b-e9c0-4000-8000-00000000bea7";
/// What every payment of [`LOAD_TEST_METHOD`] is for, in pesos.
pub const LOAD_TEST_AMOUNT: &str = "100.00";

/// CONFIRMED, 500 MXN: the payment of Compago's refund example.
pub const CONFIRMED_500: &str = "11111111-2222-3333-4444-555555555555";
/// CONFIRMED, 1234.56 MXN.
pub const CONFIRMED_1234_56: &str = "22222222-2222-2222-2222-222222222222";
/// CONFIRMED, 250 MXN.
pub const CONFIRMED_250: &str = "33333333-3333-3333-3333-333333333333";
/// CONFIRMED, 505.95 MXN.
pub const CONFIRMED_505_95: &str = "44444444-4444-4444-4444-444444444444";
/// PENDING, 300 MXN.
pub const PENDING_PAYMENT: &str = "55555555-5555-5555-5555-555555555555";
/// REFUNDED, 250 MXN: the refunded payment of Compago's list example.
pub const REFUNDED_PAYMENT: &str = "66666666-7777-8888-9999-000000000000";
/// NOT_INITIALIZED, 150 MXN.
pub const NOT_INITIALIZED_PAYMENT: &str = "77777777-7777-7777-7777-777777777777";
/// CANCELLED, 99.90 MXN.
pub const CANCELLED_PAYMENT: &str = "88888888-8888-8888-8888-888888888888";
/// CONFIRMED, 420 MXN, charged on the revoked method before it was revoked.
pub const REVOKED_METHOD_PAYMENT: &str = "99999999-9999-9999-9999-999999999999";

/// One fixture payment method.
#[derive(Clone, Copy, Debug)]
pub struct FixtureMethod {
    pub id: &'static str,
    pub status: MethodStatus,
    pub external_id: &'static str,
    pub last_four_digits: &'static str,
    pub network_type: &'static str,
    pub created_at: &'static str,
}

/// One fixture payment.
#[derive(Clone, Copy, Debug)]
pub struct FixturePayment {
    pub id: &'static str,
    pub payment_method_id: &'static str,
    pub status: PaymentStatus,
    /// Decimal pesos.
    pub amount: &'static str,
    pub created_at: &'static str,
    /// What it is for.
    pub note: &'static str,
}

pub const METHODS: &[FixtureMethod] = &[
    FixtureMethod {
        id: ACTIVE_METHOD,
        status: MethodStatus::Active,
        external_id: "customer_12345",
        last_four_digits: "4242",
        network_type: "VISA",
        created_at: "2025-01-15T10:30:00Z",
    },
    FixtureMethod {
        id: REVOKED_METHOD,
        status: MethodStatus::Revoked,
        external_id: "customer_67890",
        last_four_digits: "1234",
        network_type: "MASTERCARD",
        created_at: "2025-01-10T08:15:00Z",
    },
    FixtureMethod {
        id: PENDING_METHOD,
        status: MethodStatus::Pending,
        external_id: "customer_24680",
        last_four_digits: "0000",
        network_type: "VISA",
        created_at: "2025-03-01T09:00:00Z",
    },
    FixtureMethod {
        id: EXPIRED_METHOD,
        status: MethodStatus::Expired,
        external_id: "customer_13579",
        last_four_digits: "0000",
        network_type: "MASTERCARD",
        created_at: "2024-12-01T09:00:00Z",
    },
    FixtureMethod {
        id: LOAD_TEST_METHOD,
        status: MethodStatus::Active,
        external_id: "load-test",
        last_four_digits: "0000",
        network_type: "VISA",
        created_at: "2024-11-01T09:00:00Z",
    },
];

pub const PAYMENTS: &[FixturePayment] = &[
    FixturePayment {
        id: CONFIRMED_500,
        payment_method_id: ACTIVE_METHOD,
        status: PaymentStatus::Confirmed,
        amount: "500",
        created_at: "2025-02-01T12:00:00Z",
        note: "refundable (Compago's own example)",
    },
    FixturePayment {
        id: CONFIRMED_1234_56,
        payment_method_id: ACTIVE_METHOD,
        status: PaymentStatus::Confirmed,
        amount: "1234.56",
        created_at: "2025-02-02T12:00:00Z",
        note: "refundable",
    },
    FixturePayment {
        id: CONFIRMED_250,
        payment_method_id: ACTIVE_METHOD,
        status: PaymentStatus::Confirmed,
        amount: "250.00",
        created_at: "2025-02-03T12:00:00Z",
        note: "refundable",
    },
    FixturePayment {
        id: CONFIRMED_505_95,
        payment_method_id: ACTIVE_METHOD,
        status: PaymentStatus::Confirmed,
        amount: "505.95",
        created_at: "2025-02-04T12:00:00Z",
        note: "refundable, centavos",
    },
    FixturePayment {
        id: PENDING_PAYMENT,
        payment_method_id: ACTIVE_METHOD,
        status: PaymentStatus::Pending,
        amount: "300.00",
        created_at: "2025-02-05T12:00:00Z",
        note: "not refundable (400)",
    },
    FixturePayment {
        id: REFUNDED_PAYMENT,
        payment_method_id: ACTIVE_METHOD,
        status: PaymentStatus::Refunded,
        amount: "250",
        created_at: "2025-01-15T09:30:00Z",
        note: "already refunded (Compago's own example)",
    },
    FixturePayment {
        id: NOT_INITIALIZED_PAYMENT,
        payment_method_id: ACTIVE_METHOD,
        status: PaymentStatus::NotInitialized,
        amount: "150.00",
        created_at: "2025-02-06T12:00:00Z",
        note: "not refundable (400)",
    },
    FixturePayment {
        id: CANCELLED_PAYMENT,
        payment_method_id: ACTIVE_METHOD,
        status: PaymentStatus::Cancelled,
        amount: "99.90",
        created_at: "2025-02-07T12:00:00Z",
        note: "not refundable (400)",
    },
    FixturePayment {
        id: REVOKED_METHOD_PAYMENT,
        payment_method_id: REVOKED_METHOD,
        status: PaymentStatus::Confirmed,
        amount: "420.00",
        created_at: "2025-01-11T08:15:00Z",
        note: "refundable: revoking stops new charges only (assumed)",
    },
];

/// The fixtures as a plain-text table: methods, then payments.
pub fn fixtures_table() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Compago payment methods");
    let _ = writeln!(
        out,
        "  {:<36}  {:<8}  {:<16}  card",
        "payment_method_id", "status", "external id"
    );
    for m in METHODS {
        let _ = writeln!(
            out,
            "  {:<36}  {:<8}  {:<16}  {} {}",
            m.id,
            m.status.as_str(),
            m.external_id,
            m.network_type,
            m.last_four_digits
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Compago payments");
    let _ = writeln!(
        out,
        "  {:<36}  {:<36}  {:<15}  {:>12}  note",
        "payment_id", "payment_method_id", "status", "amount"
    );
    for p in PAYMENTS {
        let _ = writeln!(
            out,
            "  {:<36}  {:<36}  {:<15}  {:>12}  {}",
            p.id,
            p.payment_method_id,
            p.status.as_str(),
            format!("{} MXN", two_decimals(p.amount)),
            p.note
        );
    }
    let _ = writeln!(
        out,
        "  {:<36}  {:<36}  {:<15}  {:>12}  load test: any payment UUID, created on first sight",
        "<any UUID>",
        LOAD_TEST_METHOD,
        PaymentStatus::Confirmed.as_str(),
        format!("{LOAD_TEST_AMOUNT} MXN"),
    );
    out
}

/// "500" -> "500.00", "99.9" -> "99.90": amounts as people write pesos.
fn two_decimals(amount: &str) -> String {
    match amount.split_once('.') {
        None => format!("{amount}.00"),
        Some((units, cents)) => format!("{units}.{cents:0<2}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Every fixture id is a valid, lower-case, hyphenated UUID, and ids are unique.
    #[test]
    fn fixture_ids_are_distinct_uuids() {
        let mut seen = HashSet::new();
        let ids = METHODS
            .iter()
            .map(|m| m.id)
            .chain(PAYMENTS.iter().map(|p| p.id));
        for id in ids {
            let parsed = uuid::Uuid::try_parse(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(parsed.hyphenated().to_string(), id);
            assert!(seen.insert(id), "{id} used twice");
        }
    }

    /// Every payment status appears, with several refundable payments; every payment
    /// belongs to a fixture method; amounts are whole centavos.
    #[test]
    fn fixtures_cover_every_status() {
        for status in PaymentStatus::ALL {
            assert!(
                PAYMENTS.iter().any(|p| p.status == status),
                "no {status:?} fixture"
            );
        }
        let confirmed = PAYMENTS
            .iter()
            .filter(|p| p.status == PaymentStatus::Confirmed)
            .count();
        assert!(confirmed >= 3);
        for p in PAYMENTS {
            assert!(METHODS.iter().any(|m| m.id == p.payment_method_id));
            let amount: rust_decimal::Decimal = p.amount.parse().unwrap();
            assert!(amount.normalize().scale() <= 2, "{}", p.amount);
        }
        assert!(METHODS.iter().any(|m| m.status == MethodStatus::Revoked));
    }

    /// The table lists every id and shows amounts with two decimals.
    #[test]
    fn table_lists_every_fixture() {
        let table = fixtures_table();
        for id in METHODS
            .iter()
            .map(|m| m.id)
            .chain(PAYMENTS.iter().map(|p| p.id))
        {
            assert!(table.contains(id), "{id} missing");
        }
        assert!(table.contains("1234.56 MXN"));
        assert!(table.contains("99.90 MXN"));
        assert!(table.contains("500.00 MXN"));
        assert!(table.contains(LOAD_TEST_METHOD) && table.contains("100.00 MXN"));
        assert!(table.contains("load test"));
    }
}
