//! Configuration turned into each part's options: the provider accounts (checked with each
//! provider's own rules), the store's options, the tenants, the refunds service's timing and
//! the worker's schedule. The configuration module knows none of these parts; this file does.

use std::{num::NonZeroU32, time::Duration};

use simulators::RunningSandbox;

use crate::{
    auth::{TenantKeys, Tenants},
    config::{Config, ConfigError, ConfigErrors, StoreConfig, TenantConfig, WorkerConfig},
    domain::TenantId,
    limits::{LimitPlan, TenantLimits},
    providers::{AccountPlan, Providers},
    refunds::Settings,
    store::StoreOptions,
};

/// Every problem of `config`: its own checks ([`Config::problems`]), then the provider
/// tables read with their providers' own rules and the web origins, the part `Config` cannot
/// check because it knows no provider. Each problem is one line naming the key.
pub fn check(config: &Config) -> Result<Vec<AccountPlan>, ConfigErrors> {
    let mut problems = config.problems();
    for (i, origin) in config.server.cors_allowed_origins.iter().enumerate() {
        if let Err(err) = crate::grpc::web::check_origin(origin) {
            problems.push(ConfigError(format!(
                "server.cors_allowed_origins[{i}]: {err}"
            )));
        }
    }
    if let Some(tls) = tls_options(config)
        && let Err(err) = crate::tls::check(&tls)
    {
        problems.push(ConfigError(err));
    }
    let mut plans = Vec::new();
    for (name, table) in &config.providers {
        match AccountPlan::parse(name, &table.kind, &table.settings) {
            Ok(plan) => plans.push(plan),
            Err(err) => problems.push(ConfigError(err)),
        }
    }
    ConfigErrors::or(problems, plans)
}

/// `[server.tls]`, when TLS is on.
pub(super) fn tls_options(config: &Config) -> Option<crate::tls::TlsOptions> {
    config
        .server
        .tls
        .as_ref()
        .map(|tls| crate::tls::TlsOptions {
            cert_file: tls.cert_file.clone(),
            key_file: tls.key_file.clone(),
            client_ca_file: tls.client_ca_file.clone(),
        })
}

/// The idle timeout of both listeners (`idle_timeout_ms = 0`: none).
pub(super) fn idle_timeout(config: &Config) -> Option<Duration> {
    (config.server.idle_timeout_ms > 0)
        .then(|| Duration::from_millis(config.server.idle_timeout_ms))
}

/// The refunds service's timing, from `[worker]` and `[server]`.
pub(super) fn refund_settings(config: &Config) -> Settings {
    let w = &config.worker;
    Settings {
        first_check: Duration::from_millis(w.first_check_ms),
        max_check_interval: Duration::from_millis(w.max_check_interval_ms),
        max_reconcile_attempts: w.max_reconcile_attempts,
        lease: Duration::from_millis(w.lease_ms),
        view_cache_entries: config.server.refund_cache_entries,
        approval_expiry: Duration::from_millis(w.approval_expires_after_ms),
    }
}

/// How often the worker looks for due refunds, how many it takes, and for how long.
pub(super) fn worker_schedule(w: &WorkerConfig) -> crate::worker::Schedule {
    crate::worker::Schedule {
        tick: Duration::from_millis(w.tick_ms),
        batch: w.batch,
        lease: Duration::from_millis(w.lease_ms),
    }
}

/// Builds the provider accounts; sandbox accounts point at the running simulators.
/// `public_url` is the base of the webhook URLs given to providers
/// (`{public_url}/webhooks/{kind}/{account}`): a sandbox PayMongo account registers its URL
/// with the simulator, which sends its signed webhooks there.
pub fn build_providers(
    config: &Config,
    sandbox: Option<&RunningSandbox>,
    public_url: &str,
) -> anyhow::Result<Providers> {
    let mut providers = Providers::default();
    for plan in check(config)? {
        providers.insert(
            plan.build(sandbox, public_url)
                .map_err(anyhow::Error::msg)?,
        );
    }
    Ok(providers)
}

/// The store's options from `[store]`.
pub fn store_options(config: &StoreConfig) -> StoreOptions {
    StoreOptions::from(config)
}

impl From<&StoreConfig> for StoreOptions {
    fn from(config: &StoreConfig) -> Self {
        let StoreConfig {
            url,
            max_connections,
            busy_timeout_ms,
            statement_timeout_ms,
            connect_timeout_ms,
        } = config;
        StoreOptions {
            url: url.clone(),
            max_connections: *max_connections,
            busy_timeout_ms: *busy_timeout_ms,
            statement_timeout_ms: *statement_timeout_ms,
            connect_timeout_ms: *connect_timeout_ms,
        }
    }
}

/// The tenants and their keys from `[[tenants]]`.
pub fn tenants(config: &[TenantConfig]) -> Tenants {
    Tenants::new(config.iter().map(|t| TenantKeys {
        tenant: TenantId::new(t.id.clone()),
        api_keys: t.api_keys.clone(),
        operator_keys: t.operator_keys.clone(),
        providers: t.providers.clone(),
        approval_above: t.approval_above.clone(),
    }))
}

/// Each tenant's limits: its own `[[tenants]]` values, else `[limits]`. In open mode tenant
/// `default` has the `[limits]` values.
pub fn limits(config: &Config) -> LimitPlan {
    let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    let l = &config.limits;
    let default = TenantLimits {
        requests_per_second: nonzero(l.requests_per_second),
        burst: nonzero(l.burst),
        watch_streams: l.watch_streams,
    };
    let mut tenants: std::collections::HashMap<_, _> = config
        .tenants
        .iter()
        .map(|t| {
            let own = TenantLimits {
                requests_per_second: nonzero(
                    t.requests_per_second.unwrap_or(l.requests_per_second),
                ),
                burst: nonzero(t.burst.unwrap_or(l.burst)),
                watch_streams: t.watch_streams.unwrap_or(l.watch_streams),
            };
            (TenantId::new(t.id.clone()), own)
        })
        .collect();
    if config.tenants.is_empty() {
        tenants.insert(TenantId::new(crate::auth::OPEN_TENANT), default);
    }
    LimitPlan { default, tenants }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::providers::ProviderKind;

    fn plans(text: &str) -> Result<Vec<AccountPlan>, ConfigErrors> {
        Config::from_toml(text).and_then(|config| check(&config))
    }

    fn plan<'a>(plans: &'a [AccountPlan], name: &str) -> &'a AccountPlan {
        plans.iter().find(|p| p.name == name).unwrap()
    }

    #[test]
    fn bad_provider_tables_say_what_is_wrong_in_one_line() {
        let cases = [
            (
                "[providers.c]\nkind = \"compago\"\nbase_url = \"http://x\"",
                "providers.c.api_key",
            ),
            ("[providers.c]\nkind = \"stripe\"", "stripe"),
            (
                "[providers.c]\nkind = \"d24\"\nsandbox = true\ntimeout_ms = \"soon\"",
                "providers.c.timeout_ms",
            ),
            (
                "[providers.c]\nkind = \"paymongo\"\nsandbox = true\napi_key = \"x\"",
                "api_key",
            ),
        ];
        let zeros = [
            "timeout_ms",
            "max_in_flight",
            "queue_timeout_ms",
            "breaker_failures",
            "breaker_open_ms",
        ]
        .map(|key| {
            (
                format!("[providers.d]\nkind = \"d24\"\nsandbox = true\n{key} = 0"),
                format!("providers.d.{key}"),
            )
        });
        let cases = cases
            .map(|(text, needle)| (text.to_owned(), needle.to_owned()))
            .into_iter()
            .chain(zeros);
        for (text, needle) in cases {
            let err = plans(&text).unwrap_err().to_string();
            assert!(err.contains(&needle), "{err:?} should mention {needle:?}");
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn contract_example_providers_parse() {
        let plans = plans(
            "[providers.d24]\nkind = \"d24\"\nbase_url = \"https://api-stg.directa24.com\"\n\
             login = \"login\"\nsecret_key = \"d24-secret\"\nread_only_key = \"ro\"\n\
             [providers.pm]\nkind = \"paymongo\"\nbase_url = \"https://api.paymongo.com\"\n\
             secret_key = \"sk_test_x\"\nwebhook_secret = \"whsk_x\"",
        )
        .unwrap();
        assert_eq!(plan(&plans, "d24").kind, ProviderKind::D24);
        assert!(plans.iter().all(|p| !p.sandbox));
        let debug = format!("{plans:?}");
        for secret in ["d24-secret", "sk_test_x", "whsk_x"] {
            assert!(!debug.contains(secret), "{secret} leaked into Debug");
        }
    }

    #[test]
    fn embedded_default_accounts_are_sandboxed() {
        let plans = check(&Config::embedded_default()).unwrap();
        assert_eq!(plans.len(), 3);
        assert!(plans.iter().all(|p| p.sandbox));
    }

    /// Each account has its own isolation settings, with defaults; zero is refused.
    #[test]
    fn isolation_settings_per_account() {
        let plans = plans(
            r#"
            [providers.a]
            kind = "compago"
            sandbox = true
            max_in_flight = 4
            queue_timeout_ms = 250
            breaker_failures = 3
            breaker_open_ms = 1500

            [providers.b]
            kind = "paymongo"
            sandbox = true
            "#,
        )
        .unwrap();
        let a = plan(&plans, "a").limits;
        assert_eq!(a.max_in_flight, 4);
        assert_eq!(a.queue_timeout, Duration::from_millis(250));
        assert_eq!(a.breaker_failures, 3);
        assert_eq!(a.breaker_open, Duration::from_millis(1500));
        let b = plan(&plans, "b").limits;
        assert_eq!(b.max_in_flight, 32);
        assert_eq!(b.queue_timeout, Duration::from_secs(1));
        assert_eq!(b.breaker_failures, 5);
        assert_eq!(b.breaker_open, Duration::from_secs(30));
        assert_eq!(b.timeout, Duration::from_secs(10));
    }

    /// The configuration's defaults are the parts' own.
    #[test]
    fn config_defaults_are_the_parts_defaults() {
        assert_eq!(
            crate::config::DEFAULT_REFUND_CACHE_ENTRIES,
            crate::refunds::DEFAULT_VIEW_CACHE_ENTRIES
        );
        assert_eq!(crate::config::DEFAULT_EVENT_BUFFER, crate::events::CAPACITY);
        assert_eq!(
            StoreOptions::from(&StoreConfig::default()),
            StoreOptions::default()
        );
    }

    #[test]
    fn tenants_come_from_the_config() {
        let config = Config::from_toml(
            "[[tenants]]\nid = \"acme\"\napi_keys = [\"k1\"]\nproviders = [\"c\"]\n\
             [providers.c]\nkind = \"compago\"\nsandbox = true",
        )
        .unwrap();
        let tenants = tenants(&config.tenants);
        assert!(!tenants.is_open());
        let crate::auth::Authn::Allowed(acme) = tenants.authenticate(Some("k1")) else {
            panic!("k1 is acme's")
        };
        assert_eq!(acme.tenant.as_str(), "acme");
        assert!(acme.may_use("c") && !acme.may_use("d"));
        assert!(!acme.is_operator());
    }

    #[test]
    fn operator_keys_approval_limits_and_expiry_come_from_the_config() {
        let config = Config::from_toml(
            "[[tenants]]\nid = \"acme\"\napi_keys = [\"k1\"]\noperator_keys = [\"op\"]\n\
             approval_above = { MXN = 1000000, PHP = 500000 }\n\
             [worker]\napproval_expires_after_ms = 60000",
        )
        .unwrap();
        let tenants = tenants(&config.tenants);
        let crate::auth::Authn::Allowed(op) = tenants.authenticate(Some("op")) else {
            panic!("op is acme's operator key")
        };
        assert!(op.is_operator());
        assert_eq!(op.approval_limit("MXN"), Some(1_000_000));
        assert_eq!(op.approval_limit("PHP"), Some(500_000));
        assert_eq!(op.approval_limit("CLP"), None);
        assert_eq!(
            refund_settings(&config).approval_expiry,
            Duration::from_secs(60)
        );
        let default = Config::from_toml("").unwrap();
        assert_eq!(
            refund_settings(&default).approval_expiry,
            Duration::from_secs(72 * 3600)
        );
    }
}
