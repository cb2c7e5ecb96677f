//! Learning what happened to a refund and recording it: SyncRefund, webhooks, and the
//! worker's polling and reconciliation.
//!
//! Rules:
//! - Every change goes through the status machine; a change it refuses is logged and counted,
//!   and the record stays as it was.
//! - A refund whose submission outcome is unknown is reconciled from the provider's answer,
//!   never guessed. It is sent again only when the provider shows no trace of it, the earlier
//!   attempt is surely over, and the provider makes a second send harmless.
//! - When the truth cannot be established within the configured number of checks, the refund
//!   goes to REQUIRES_REVIEW (streamed and counted), so nothing stays pending silently.

use chrono::{DateTime, Utc};

use super::{
    Refunds,
    create::{CAS_RETRIES, attempt_over_at},
};
use crate::{
    auth::Caller,
    domain::{
        ApiError, ErrorCode, IllegalTransition, Observation, Refund, RefundFailure, RefundId,
        RefundStatus, Submission, reason,
    },
    providers::{
        ProviderAccount, ProviderKind, RefundLookup, SubmitOutcome, WebhookError, WebhookNotice,
    },
    store::{RequestKey, RequestResult, UpdateOutcome},
};

/// What one worker check did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The refund changed.
    Changed,
    /// Nothing new; checked again later.
    Unchanged,
    /// The provider could not be asked; checked again later.
    Failed,
}

/// Failure code of a refund whose outcome could not be established.
const OUTCOME_UNKNOWN: &str = "OUTCOME_UNKNOWN";

impl Refunds {
    /// Writes `next` over `current` (compare-and-set) and publishes the event. `None`: someone
    /// else changed the refund first; read it again and decide again.
    pub(super) async fn save(
        &self,
        current: &Refund,
        next: &Refund,
    ) -> Result<Option<Refund>, ApiError> {
        self.save_settling(current, next, None).await
    }

    /// [`Refunds::save`], also settling a request key in the same transaction.
    pub(super) async fn save_settling(
        &self,
        current: &Refund,
        next: &Refund,
        settles: Option<(&RequestKey, &RequestResult)>,
    ) -> Result<Option<Refund>, ApiError> {
        let outcome = match settles {
            None => self.inner.store.update_refund(current, next).await?,
            Some((key, result)) => {
                self.inner
                    .store
                    .update_refund_completing(current, next, key, result)
                    .await?
            }
        };
        match outcome {
            UpdateOutcome::Updated { refund, event } => {
                self.inner.views.put(&refund);
                if let Some(event) = event {
                    if refund.status != current.status {
                        tracing::info!(
                            refund_id = %refund.id,
                            provider = %refund.provider,
                            from = %current.status,
                            to = %refund.status,
                            provider_status = refund.provider_status.as_deref().unwrap_or(""),
                            "refund status changed"
                        );
                    }
                    if refund.status == RefundStatus::RequiresReview
                        && current.status != RefundStatus::RequiresReview
                    {
                        let code = refund
                            .failure
                            .as_ref()
                            .map_or("", |f| f.code.as_str())
                            .to_owned();
                        tracing::warn!(refund_id = %refund.id, provider = %refund.provider, code, "refund needs review");
                        metrics::counter!(
                            "refund_gateway_refunds_requires_review_total",
                            "provider" => refund.provider.clone(),
                            "reason" => code
                        )
                        .increment(1);
                    }
                    self.inner.bus.publish(event);
                }
                Ok(Some(refund))
            }
            UpdateOutcome::Conflict => Ok(None),
        }
    }

    /// Applies a provider's observation to `current` (`Refund::observe`, which holds the
    /// integrity rule), logging an observation that contradicts the refund's amount,
    /// currency or payment: the refund goes to REQUIRES_REVIEW instead of accepting it.
    pub(super) fn apply_observation(
        &self,
        current: &Refund,
        obs: &Observation,
        now: DateTime<Utc>,
        source: &'static str,
    ) -> Result<Refund, IllegalTransition> {
        let differences = obs.contradictions(current);
        if !differences.is_empty() {
            tracing::error!(
                refund_id = %current.id,
                provider = %current.provider,
                source,
                provider_refund_id = obs.provider_refund_id.as_deref().unwrap_or(""),
                differences = %differences.join(", "),
                "the provider's answer contradicts the refund; it goes to review, not accepted"
            );
        }
        current.observe(obs, now)
    }

    /// Logs and counts a change the status machine refuses.
    pub(super) fn refuse_transition(
        &self,
        current: &Refund,
        to: RefundStatus,
        source: &'static str,
    ) {
        tracing::error!(
            refund_id = %current.id,
            provider = %current.provider,
            from = %current.status,
            to = %to,
            source,
            "refused an impossible refund status change"
        );
        metrics::counter!(
            "refund_gateway_refund_transitions_refused_total",
            "provider" => current.provider.clone(),
            "from" => current.status.as_str(),
            "to" => to.as_str()
        )
        .increment(1);
    }

    /// Sets when the worker looks at the refund next. `changed`: something was learned, so
    /// the backoff starts over.
    pub(super) fn schedule(&self, next: &mut Refund, changed: bool, now: DateTime<Utc>) {
        let settings = &self.inner.settings;
        if (next.status.is_final() && !next.submission.is_uncertain())
            || next.under_mismatch_review()
        {
            // Nothing left to learn automatically (a mismatch waits for a person).
            next.next_check_at = None;
            next.check_attempts = 0;
        } else if changed {
            next.check_attempts = 0;
            next.next_check_at = Some(now + settings.first_check);
        } else {
            next.check_attempts = next.check_attempts.saturating_add(1);
            next.next_check_at = Some(now + self.backoff(next.check_attempts));
        }
    }

    /// The wait before check number `attempt` (exponential with jitter, capped).
    fn backoff(&self, attempt: i32) -> std::time::Duration {
        use backon::BackoffBuilder as _;
        let settings = &self.inner.settings;
        backon::ExponentialBuilder::default()
            .with_min_delay(settings.first_check)
            .with_max_delay(settings.max_check_interval)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(usize::try_from(attempt.max(0)).unwrap_or(usize::MAX))
            .unwrap_or(settings.max_check_interval)
    }

    /// Records what a provider reported about refund `id`.
    pub(super) async fn record_observation(
        &self,
        id: &RefundId,
        obs: &Observation,
        source: &'static str,
    ) -> Result<Refund, ApiError> {
        for _ in 0..CAS_RETRIES {
            let current = self
                .inner
                .store
                .get_refund(id)
                .await?
                .ok_or_else(|| ApiError::refund_not_found(id.as_str()))?;
            if current.under_mismatch_review() && source != "sync" {
                tracing::info!(
                    refund_id = %current.id,
                    provider = %current.provider,
                    source,
                    "refund held for review after a provider mismatch; not updated automatically (SyncRefund records the provider's answer)"
                );
                return Ok(current);
            }
            let now = Self::now();
            let mut next = match self.apply_observation(&current, obs, now, source) {
                Ok(next) => next,
                Err(illegal) => {
                    self.refuse_transition(&current, illegal.to, source);
                    return Ok(current);
                }
            };
            // The provider has it, so the submission is no longer in doubt.
            if next.submission.is_uncertain() {
                next.submission = Submission::Accepted;
            }
            let changed = next.differs_visibly(&current) || next.submission != current.submission;
            self.schedule(&mut next, changed, now);
            if let Some(saved) = self.save(&current, &next).await? {
                return Ok(saved);
            }
        }
        Err(busy())
    }

    /// SyncRefund: ask the provider now, even for a final refund, and record the answer.
    pub async fn sync_refund(&self, caller: &Caller, id: &str) -> Result<Refund, ApiError> {
        let refund = self.load_own(caller, id).await?;
        let account = self.account_of(&refund)?;
        let synced = match account.fetch_refund(&refund).await {
            Ok(RefundLookup::Found(obs)) => {
                self.record_observation(&refund.id, &obs, "sync").await?
            }
            Ok(RefundLookup::Absent) => self.absent(&account, refund).await?,
            Err(err) => return Err(err.to_api_error(&account.name)),
        };
        Ok(synced.public_view())
    }

    /// One worker check of a refund it has leased.
    pub async fn check(&self, refund: Refund) -> CheckOutcome {
        let Ok(account) = self.account_of(&refund) else {
            tracing::warn!(refund_id = %refund.id, provider = %refund.provider, "provider account no longer configured; checking again later");
            let _ = self.reschedule(refund).await;
            return CheckOutcome::Failed;
        };
        let result = match account.fetch_refund(&refund).await {
            Ok(RefundLookup::Found(obs)) => self
                .record_observation(&refund.id, &obs, "poll")
                .await
                .map(|r| (r, true)),
            Ok(RefundLookup::Absent) => self
                .absent(&account, refund.clone())
                .await
                .map(|r| (r, true)),
            Err(err) => {
                let wait = err.not_now().flatten();
                tracing::info!(refund_id = %refund.id, provider = %account.name, error = %err, retry_after_s = wait.map(|w| w.as_secs()), "provider check failed; retrying later");
                self.reschedule_after(refund.clone(), wait)
                    .await
                    .map(|r| (r, false))
            }
        };
        let outcome = match result {
            Ok((after, true)) if after.differs_visibly(&refund) => CheckOutcome::Changed,
            Ok((_, true)) => CheckOutcome::Unchanged,
            Ok((_, false)) | Err(_) => CheckOutcome::Failed,
        };
        metrics::counter!(
            "refund_gateway_worker_checks_total",
            "provider" => refund.provider.clone(),
            "outcome" => match outcome {
                CheckOutcome::Changed => "changed",
                CheckOutcome::Unchanged => "unchanged",
                CheckOutcome::Failed => "failed",
            }
        )
        .increment(1);
        outcome
    }

    /// The provider holds no such refund.
    async fn absent(&self, account: &ProviderAccount, refund: Refund) -> Result<Refund, ApiError> {
        let now = Self::now();
        let in_doubt = refund.status == RefundStatus::Pending && refund.submission.is_uncertain();
        if !in_doubt {
            if !refund.status.is_final() && refund.submission == Submission::Accepted {
                tracing::warn!(refund_id = %refund.id, provider = %account.name, status = %refund.status, "provider shows no trace of a refund it had accepted");
            }
            return self.reschedule(refund).await;
        }
        let attempt_over = attempt_over_at(account, refund.updated_at) <= now;
        if !attempt_over || !account.provider.resubmit_is_safe() {
            return self.reschedule(refund).await;
        }
        // The earlier attempt is over and left no trace, and sending again is harmless.
        tracing::info!(refund_id = %refund.id, provider = %account.name, "no trace of the refund at the provider; sending it again");
        let outcome = account.submit_refund(&refund).await;
        match outcome {
            SubmitOutcome::Accepted(obs) => {
                self.record_observation(&refund.id, &obs, "resubmit").await
            }
            // "Not now" (rate limited) proves nothing about the earlier attempt: look again
            // later, no earlier than the provider asked.
            SubmitOutcome::Rejected(rejection) if rejection.code == ErrorCode::Unavailable => {
                tracing::info!(refund_id = %refund.id, provider = %account.name, retry_after_s = rejection.retry_after.map(|w| w.as_secs()), "provider asked the gateway to back off; reconciling later");
                self.reschedule_after(refund, rejection.retry_after).await
            }
            SubmitOutcome::Rejected(rejection) => {
                // A refusal now may be the earlier attempt having landed meanwhile: look again
                // before calling it failed.
                match account.fetch_refund(&refund).await {
                    Ok(RefundLookup::Found(obs)) => {
                        self.record_observation(&refund.id, &obs, "resubmit").await
                    }
                    Ok(RefundLookup::Absent) => {
                        let failure = rejection.to_failure();
                        self.fail_uncertain(&refund.id, failure, Submission::Rejected)
                            .await
                    }
                    Err(err) => self.reschedule_after(refund, err.not_now().flatten()).await,
                }
            }
            SubmitOutcome::NotSent(_) | SubmitOutcome::Unknown(_) => {
                let latest = self.reload(&refund.id).await?;
                let mut next = latest.clone();
                next.submission = Submission::Unknown;
                self.reschedule_from(latest, next, None).await
            }
        }
    }

    /// Marks a refund whose submission was in doubt as failed (the provider proved it absent
    /// and refused it again).
    async fn fail_uncertain(
        &self,
        id: &RefundId,
        failure: RefundFailure,
        submission: Submission,
    ) -> Result<Refund, ApiError> {
        for _ in 0..CAS_RETRIES {
            let current = self.reload(id).await?;
            if !(current.status == RefundStatus::Pending && current.submission.is_uncertain()) {
                return Ok(current);
            }
            let now = Self::now();
            let mut next = current.clone();
            next.status = RefundStatus::Failed;
            next.failure = Some(failure.clone());
            next.submission = submission;
            next.updated_at = now;
            self.schedule(&mut next, true, now);
            if let Some(saved) = self.save(&current, &next).await? {
                return Ok(saved);
            }
        }
        Err(busy())
    }

    /// Nothing new was learned: count the check, push the next one out, and send a refund
    /// whose outcome stays unknown for too long to REQUIRES_REVIEW.
    async fn reschedule(&self, refund: Refund) -> Result<Refund, ApiError> {
        self.reschedule_after(refund, None).await
    }

    /// As [`Self::reschedule`], and the next check comes no earlier than `at_least` from now
    /// (a provider's `Retry-After`).
    async fn reschedule_after(
        &self,
        refund: Refund,
        at_least: Option<std::time::Duration>,
    ) -> Result<Refund, ApiError> {
        let next = refund.clone();
        self.reschedule_from(refund, next, at_least).await
    }

    async fn reschedule_from(
        &self,
        mut current: Refund,
        mut next: Refund,
        at_least: Option<std::time::Duration>,
    ) -> Result<Refund, ApiError> {
        for _ in 0..CAS_RETRIES {
            let now = Self::now();
            self.schedule(&mut next, false, now);
            if let Some(wait) = at_least {
                let earliest = now + wait;
                if next.next_check_at.is_some_and(|at| at < earliest) {
                    next.next_check_at = Some(earliest);
                }
            }
            let exhausted = next.check_attempts >= self.inner.settings.max_reconcile_attempts;
            if exhausted
                && current.status == RefundStatus::Pending
                && current.submission.is_uncertain()
            {
                next.status = RefundStatus::RequiresReview;
                next.failure = Some(RefundFailure::new(
                    OUTCOME_UNKNOWN,
                    format!(
                        "the provider's outcome could not be established after {} checks",
                        next.check_attempts
                    ),
                ));
                next.updated_at = now;
                // Keep looking, slowly: the provider may still tell.
                next.next_check_at = Some(now + self.inner.settings.max_check_interval);
            }
            if let Some(saved) = self.save(&current, &next).await? {
                return Ok(saved);
            }
            current = self.reload(&current.id).await?;
            next = current.clone();
        }
        Err(busy())
    }

    pub(super) async fn reload(&self, id: &RefundId) -> Result<Refund, ApiError> {
        self.inner
            .store
            .get_refund(id)
            .await?
            .ok_or_else(|| ApiError::refund_not_found(id.as_str()))
    }

    fn account_of(&self, refund: &Refund) -> Result<std::sync::Arc<ProviderAccount>, ApiError> {
        self.inner
            .providers
            .get(&refund.provider)
            .cloned()
            .ok_or_else(|| {
                ApiError::failed_precondition(
                    reason::PROVIDER_NOT_CONFIGURED,
                    format!(
                        "provider account {:?} is no longer configured",
                        refund.provider
                    ),
                )
                .with("provider", refund.provider.clone())
            })
    }

    /// A webhook delivery for account `account_name`, arriving on the route for `kind`.
    /// Returns how many refunds it named that the gateway knows.
    pub async fn handle_webhook(
        &self,
        account_name: &str,
        kind: ProviderKind,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<usize, WebhookFailure> {
        let account = self
            .inner
            .providers
            .get(account_name)
            .filter(|a| a.provider.kind() == kind)
            .cloned()
            .ok_or(WebhookFailure::UnknownAccount)?;
        let notices = account
            .provider
            .parse_webhook(headers, body)
            .map_err(WebhookFailure::Refused)?;
        let mut known = 0;
        for notice in notices {
            let (provider_refund_id, gateway_id) = match &notice {
                WebhookNotice::Refetch { provider_refund_id } => {
                    (provider_refund_id.as_str(), None)
                }
                WebhookNotice::Observed {
                    provider_refund_id,
                    gateway_refund_id,
                    ..
                } => (provider_refund_id.as_str(), gateway_refund_id.as_deref()),
            };
            let mut refund = self
                .inner
                .store
                .find_by_provider_refund_id(&account.name, provider_refund_id)
                .await
                .map_err(|e| WebhookFailure::Retry(e.to_string()))?;
            if refund.is_none()
                && let Some(id) = gateway_id.and_then(RefundId::parse)
            {
                refund = self
                    .inner
                    .store
                    .get_refund(&id)
                    .await
                    .map_err(|e| WebhookFailure::Retry(e.to_string()))?
                    .filter(|r| r.provider == account.name);
            }
            let Some(refund) = refund else {
                match &notice {
                    // An id the gateway never learnt may be a refund whose submission answer
                    // was lost: recognise it by payment and amount (link.rs, which logs what
                    // it cannot link).
                    WebhookNotice::Refetch { provider_refund_id } => {
                        if self
                            .link_unknown(&account, provider_refund_id)
                            .await?
                            .is_some()
                        {
                            known += 1;
                        }
                    }
                    WebhookNotice::Observed { .. } => {
                        tracing::warn!(provider = %account.name, provider_refund_id, "webhook names a refund the gateway does not know; ignored");
                    }
                }
                continue;
            };
            known += 1;
            let result = match notice {
                WebhookNotice::Refetch { .. } => match account.fetch_refund(&refund).await {
                    Ok(RefundLookup::Found(obs)) => {
                        self.record_observation(&refund.id, &obs, "webhook").await
                    }
                    Ok(RefundLookup::Absent) => Ok(refund.clone()),
                    Err(err) => Err(err.to_api_error(&account.name)),
                },
                WebhookNotice::Observed { observation, .. } => {
                    self.record_observation(&refund.id, &observation, "webhook")
                        .await
                }
            };
            if let Err(err) = result {
                return Err(WebhookFailure::Retry(err.message));
            }
        }
        Ok(known)
    }
}

/// Why a webhook delivery was not taken.
#[derive(Debug, thiserror::Error)]
pub enum WebhookFailure {
    #[error("no provider account of this kind with this name")]
    UnknownAccount,
    #[error(transparent)]
    Refused(WebhookError),
    /// Valid, but it could not be processed now; the provider should deliver it again.
    #[error("try again later: {0}")]
    Retry(String),
}

pub(super) fn busy() -> ApiError {
    ApiError::new(
        ErrorCode::Aborted,
        reason::INTERNAL,
        "the refund kept changing; try again",
    )
}
