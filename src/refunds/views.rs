//! The latest public view of refunds this process has seen, for GetRefund without a store
//! round trip.
//!
//! Only for a store this process has to itself (SQLite): every change of a refund is written
//! by this process, and the view is updated right after the write commits, before the caller
//! hears back, so GetRefund always sees what a completed call did. With a store shared by
//! several replicas (PostgreSQL) another replica's write would not be seen at once, so there
//! is no cache and GetRefund reads the store.
//!
//! Entries are replaced only by a newer version (concurrent writers can finish their updates
//! in any order), and the number of entries is bounded (least recently used go first).

use std::sync::Arc;

use moka::{ops::compute::Op, sync::Cache};

use crate::domain::{Refund, RefundId};

/// Bounded map from refund id to its latest public view.
#[derive(Clone, Debug)]
pub(super) struct Views {
    cache: Option<Cache<RefundId, Arc<Refund>>>,
}

impl Views {
    /// `capacity` 0, or a shared store: no cache.
    pub(super) fn new(capacity: u64, shared_store: bool) -> Self {
        Self {
            cache: (capacity > 0 && !shared_store).then(|| Cache::new(capacity)),
        }
    }

    pub(super) fn get(&self, id: &RefundId) -> Option<Arc<Refund>> {
        self.cache.as_ref()?.get(id)
    }

    /// Keeps `refund`'s public view unless a newer version is already there.
    pub(super) fn put(&self, refund: &Refund) {
        let Some(cache) = &self.cache else {
            return;
        };
        let view = Arc::new(refund.public_view());
        cache
            .entry(refund.id.clone())
            .and_compute_with(|existing| match existing {
                Some(entry) if entry.value().version >= view.version => Op::Nop,
                _ => Op::Put(view),
            });
    }
}

#[cfg(test)]
mod tests {

    use chrono::Utc;

    use super::*;
    use crate::domain::{
        BankAccount, BankAccountType, Currency, Money, PaymentRef, RefundStatus, TenantId,
    };

    fn refund(version: i64) -> Refund {
        let now = Utc::now();
        Refund {
            id: RefundId::parse("rf_0123456789abcdef0123456789abcdef").unwrap(),
            bank_account: Some(BankAccount {
                beneficiary: "b".into(),
                bank_code: "1".into(),
                branch: String::new(),
                account_number: "123456789".into(),
                account_type: BankAccountType::Saving,
            }),
            version,
            ..Refund::new_pending(
                TenantId::new("t"),
                "r",
                "d24",
                PaymentRef::default(),
                Money::new(100, Currency::parse("MXN").unwrap()),
                now,
            )
        }
    }

    #[test]
    fn newer_versions_win_whatever_the_order_and_views_are_masked() {
        let views = Views::new(10, false);
        let mut v2 = refund(2);
        v2.status = RefundStatus::Succeeded;
        views.put(&v2);
        views.put(&refund(1));
        let got = views.get(&v2.id).unwrap();
        assert_eq!(got.version, 2);
        assert_eq!(got.status, RefundStatus::Succeeded);
        assert_eq!(
            got.bank_account.as_ref().unwrap().account_number,
            "*****6789"
        );
    }

    #[test]
    fn shared_stores_and_zero_capacity_cache_nothing() {
        for views in [Views::new(10, true), Views::new(0, false)] {
            views.put(&refund(1));
            assert!(views.get(&refund(1).id).is_none());
        }
    }
}
