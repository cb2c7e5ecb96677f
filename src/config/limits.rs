//! `[limits]`: each tenant's share of the gateway (the values a tenant gets unless its
//! `[[tenants]]` entry sets its own).

use serde::Deserialize;

/// `[limits]`: how much one tenant may ask of the gateway, so one tenant cannot starve the
/// others. Every tenant gets these unless its `[[tenants]]` entry sets its own; in open mode
/// tenant `default` gets them.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Calls per second a tenant may make, sustained (a token bucket refilled at this rate).
    pub requests_per_second: u32,
    /// Calls a tenant may make at once above the sustained rate (the bucket's size).
    pub burst: u32,
    /// Watch streams (WatchRefund and WatchRefunds together) a tenant may hold open at once.
    pub watch_streams: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 200,
            burst: 400,
            watch_streams: 100,
        }
    }
}
