//! `[worker]`: the background worker that follows refunds to their final status.

use serde::Deserialize;

/// The background worker that follows refunds to their final status.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// How often the worker looks for due refunds when nothing wakes it.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// First wait before asking a provider about a refund that is not final.
    #[serde(default = "default_first_check_ms")]
    pub first_check_ms: u64,
    /// The longest wait between two checks.
    #[serde(default = "default_max_check_interval_ms")]
    pub max_check_interval_ms: u64,
    /// Checks of an unknown outcome before the refund goes to REQUIRES_REVIEW.
    #[serde(default = "default_max_reconcile_attempts")]
    pub max_reconcile_attempts: i32,
    /// How long a claimed check is reserved for one worker.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// Refunds checked at once.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// How long a refund waits in REQUIRES_APPROVAL before the worker cancels it (default
    /// 72 hours).
    #[serde(default = "default_approval_expires_after_ms")]
    pub approval_expires_after_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            tick_ms: default_tick_ms(),
            first_check_ms: default_first_check_ms(),
            max_check_interval_ms: default_max_check_interval_ms(),
            max_reconcile_attempts: default_max_reconcile_attempts(),
            lease_ms: default_lease_ms(),
            batch: default_batch(),
            approval_expires_after_ms: default_approval_expires_after_ms(),
        }
    }
}

fn default_tick_ms() -> u64 {
    500
}
fn default_first_check_ms() -> u64 {
    2_000
}
fn default_max_check_interval_ms() -> u64 {
    300_000
}
fn default_max_reconcile_attempts() -> i32 {
    20
}
fn default_lease_ms() -> u64 {
    30_000
}
fn default_batch() -> u32 {
    32
}
fn default_approval_expires_after_ms() -> u64 {
    72 * 60 * 60 * 1000
}
