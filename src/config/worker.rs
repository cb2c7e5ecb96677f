//! `[worker]`: the background worker that follows refunds to their final status.

use serde::Deserialize;

/// The background worker that follows refunds to their final status.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// How often the worker looks for due refunds when nothing wakes it.
    pub tick_ms: u64,
    /// First wait before asking a provider about a refund that is not final.
    pub first_check_ms: u64,
    /// The longest wait between two checks.
    pub max_check_interval_ms: u64,
    /// Checks of an unknown outcome before the refund goes to REQUIRES_REVIEW.
    pub max_reconcile_attempts: i32,
    /// How long a claimed check is reserved for one worker.
    pub lease_ms: u64,
    /// Refunds checked at once.
    pub batch: u32,
    /// How long a refund waits in REQUIRES_APPROVAL before the worker cancels it (default
    /// 72 hours).
    pub approval_expires_after_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            tick_ms: 500,
            first_check_ms: 2_000,
            max_check_interval_ms: 300_000,
            max_reconcile_attempts: 20,
            lease_ms: 30_000,
            batch: 32,
            approval_expires_after_ms: 72 * 60 * 60 * 1000,
        }
    }
}
