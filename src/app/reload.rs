//! Reloading the tenants without a restart (SIGHUP): the file is read again with the
//! environment overrides, as at start, and checked whole with `app::check`. A file that does
//! not validate is refused with one log line and nothing changes. Otherwise the tenant table
//! (keys, providers, and everything else a tenant has) is rebuilt with `app::tenants` and
//! swapped in one step, after the tenants' limits; watch streams whose key is gone end with
//! UNAUTHENTICATED. Every other key that changed (listen addresses, store, provider accounts,
//! ...) is named in a warning as needing a restart, and the running value stays.

use std::{path::PathBuf, sync::Arc};

use crate::{
    auth::TenantTable,
    config::{Config, ConfigErrors},
    limits::Limiter,
};

/// What a reload replaces, and the configuration the gateway started with.
#[derive(Clone, Debug)]
pub struct Reloader {
    pub(super) tenants: Arc<TenantTable>,
    pub(super) limits: Arc<Limiter>,
    /// The running configuration: what a newer file is compared with.
    pub(super) running: Arc<Config>,
}

/// What a successful reload applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reloaded {
    pub tenants: usize,
    pub api_keys: usize,
}

impl Reloader {
    /// Reads `file` (the embedded default when `None`) and applies its tenants and limits,
    /// or changes nothing and returns every problem.
    pub fn reload(&self, file: Option<&std::path::Path>) -> Result<Reloaded, ConfigErrors> {
        let config = Config::read(file)?;
        super::check(&config)?;
        let restart = self.running.changed_outside_tenants(&config);
        if !restart.is_empty() {
            tracing::warn!(
                keys = %restart.join(", "),
                "config reload: these keys changed but need a restart; their running values stay"
            );
        }
        let tenants = super::tenants(&config.tenants);
        let (tenant_count, key_count) = tenants.counts();
        let open = tenants.is_open();
        // Limits first, so a tenant that appears finds its own limits on its first call.
        self.limits.replace(super::options::limits(&config));
        self.tenants.replace(tenants);
        tracing::info!(
            tenants = tenant_count,
            api_keys = key_count,
            open,
            "config reloaded: tenants and limits applied"
        );
        Ok(Reloaded {
            tenants: tenant_count,
            api_keys: key_count,
        })
    }

    /// Reloads on each SIGHUP until `shutdown`. `hangup` is made before the gateway starts,
    /// so a SIGHUP never finds the default action (which ends the process).
    #[cfg(unix)]
    pub async fn on_hangup(
        self,
        file: Option<PathBuf>,
        mut hangup: tokio::signal::unix::Signal,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                received = hangup.recv() => if received.is_none() { return },
            }
            if let Err(problems) = self.reload(file.as_deref()) {
                tracing::error!(
                    problems = %problems,
                    "config reload refused; the running configuration stays"
                );
            }
        }
    }
}
