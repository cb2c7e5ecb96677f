//! GetRefund and ListRefunds: reading the caller's refunds.

use super::{DEFAULT_PAGE_SIZE, ListRequest, MAX_PAGE_SIZE, Page, Refunds, page_token};
use crate::{
    auth::Caller,
    domain::{ApiError, FieldViolation, Refund, RefundId},
    store::ListQuery,
};

/// The caller's refund, or NOT_FOUND (also for another tenant's refund).
pub(super) async fn get(refunds: &Refunds, caller: &Caller, id: &str) -> Result<Refund, ApiError> {
    if let Some(parsed) = RefundId::parse(id)
        && let Some(view) = refunds.inner.views.get(&parsed)
    {
        return if view.tenant == caller.tenant {
            Ok(Refund::clone(&view))
        } else {
            Err(ApiError::refund_not_found(id))
        };
    }
    let refund = refunds.load_own(caller, id).await?;
    refunds.inner.views.put(&refund);
    Ok(refund.public_view())
}

/// The caller's refunds, newest first, a page at a time.
pub(super) async fn list(
    refunds: &Refunds,
    caller: &Caller,
    req: ListRequest,
) -> Result<Page, ApiError> {
    let limit = match req.page_size {
        n if n < 0 => {
            return Err(ApiError::invalid(vec![FieldViolation::new(
                "page_size",
                "must not be negative",
            )]));
        }
        0 => DEFAULT_PAGE_SIZE,
        n => (n as u32).min(MAX_PAGE_SIZE),
    };
    let page_key = &refunds.inner.page_key;
    let filter = page_token::Filter {
        provider: req.provider.clone(),
        status: req.status,
        payment_id: req.payment_id.clone(),
    };
    let before = if req.page_token.is_empty() {
        None
    } else {
        Some(page_token::open(
            page_key,
            &req.page_token,
            &caller.tenant,
            &filter,
        )?)
    };
    let mut found = refunds
        .inner
        .store
        .list_refunds(&ListQuery {
            tenant: caller.tenant.clone(),
            provider: req.provider,
            status: req.status,
            payment_id: req.payment_id,
            before,
            limit: limit + 1,
        })
        .await?;
    let next_page_token = if found.len() > limit as usize {
        found.truncate(limit as usize);
        let last = found.last().expect("limit is at least 1");
        page_token::seal(page_key, &caller.tenant, &filter, last.created_at, &last.id)
    } else {
        String::new()
    };
    Ok(Page {
        refunds: found.into_iter().map(Refund::into_public_view).collect(),
        next_page_token,
    })
}
