//! The fingerprint of a CreateRefund request: what "the same parameters" means for
//! idempotency. Every parameter counts, in a canonical order.

use sha2::{Digest as _, Sha256};

use crate::providers::RefundDraft;

pub(super) fn of(draft: &RefundDraft) -> String {
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    put(&draft.provider);
    put(&draft.payment.payment_id);
    put(&draft.payment.payment_method_id);
    put(&draft.payment.invoice_id);
    match &draft.amount {
        Some(m) => {
            put(m.currency.code());
            put(&m.minor.to_string());
        }
        None => put("-"),
    }
    put(&format!("{:?}", draft.reason));
    put(&draft.description);
    put(&draft.metadata.len().to_string());
    for (k, v) in &draft.metadata {
        put(k);
        put(v);
    }
    match &draft.bank_account {
        Some(b) => {
            put(&b.beneficiary);
            put(&b.bank_code);
            put(&b.branch);
            put(&b.account_number);
            put(b.account_type.as_str());
        }
        None => put("-"),
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{Currency, Money, PaymentRef, RefundReason, TenantId};

    fn draft() -> RefundDraft {
        RefundDraft {
            tenant: TenantId::new("t"),
            request_id: "r1".into(),
            provider: "compago".into(),
            payment: PaymentRef {
                payment_id: "p".into(),
                payment_method_id: "m".into(),
                invoice_id: String::new(),
            },
            amount: Some(Money::new(100, Currency::parse("MXN").unwrap())),
            reason: RefundReason::Other,
            description: "d".into(),
            metadata: BTreeMap::from([("a".into(), "b".into())]),
            bank_account: None,
        }
    }

    #[test]
    fn every_parameter_changes_the_fingerprint() {
        let base = of(&draft());
        assert_eq!(base, of(&draft()));
        let mut variants = Vec::new();
        let mut d = draft();
        d.provider = "d24".into();
        variants.push(d);
        let mut d = draft();
        d.amount = None;
        variants.push(d);
        let mut d = draft();
        d.amount = Some(Money::new(101, Currency::parse("MXN").unwrap()));
        variants.push(d);
        let mut d = draft();
        d.reason = RefundReason::Duplicate;
        variants.push(d);
        let mut d = draft();
        d.description = "e".into();
        variants.push(d);
        let mut d = draft();
        d.metadata.insert("c".into(), "d".into());
        variants.push(d);
        let mut d = draft();
        d.payment.payment_method_id = "n".into();
        variants.push(d);
        for v in variants {
            assert_ne!(of(&v), base, "{v:?}");
        }
        // The request id itself is the key, not a parameter.
        let mut d = draft();
        d.request_id = "r2".into();
        assert_eq!(of(&d), base);
    }
}
