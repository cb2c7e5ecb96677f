//! Wiring: open the store, start the simulators a sandbox account needs, build the provider
//! accounts, the event bus, the service, the gRPC and HTTP servers and the worker; and shut
//! them down in order.
//!
//! Shutdown (SIGTERM/SIGINT, or [`Running::shutdown`]):
//! 1. health goes NOT_SERVING, `/readyz` answers 503, new RPCs are refused with UNAVAILABLE;
//! 2. after a short drain (so load balancers notice), the servers stop accepting; in-flight
//!    calls finish; watch streams end cleanly (OK);
//! 3. the worker finishes the checks it is making;
//! 4. the process exits once everything has stopped, or after `shutdown_grace_ms`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use simulators::RunningSandbox;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::ServingStatus;

use crate::{
    auth::{TenantKeys, Tenants},
    config::{Config, ConfigError, StoreConfig, TenantConfig},
    domain::TenantId,
    events::EventBus,
    grpc::{Authenticate, RefundApi},
    pb::{self, refund_service_server::RefundServiceServer},
    providers::{AccountPlan, Providers},
    refunds::{Refunds, Settings},
    store::{PostgresStore, RefundStore, StoreOptions, sqlite::SqliteStore},
};

/// How long NOT_SERVING is shown before the servers stop accepting.
const DRAIN: Duration = Duration::from_millis(300);

/// A started gateway.
#[derive(Debug)]
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The simulators, when a sandbox account needs them.
    pub sandbox: Option<RunningSandbox>,
    pub refunds: Refunds,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
    grace: Duration,
}

impl Running {
    /// Starts the shutdown sequence; [`Running::wait`] returns when it is done.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// A token cancelled when shutdown starts.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits for every part to stop (after a shutdown, or a failure of one of them).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        // Everything runs until shutdown; a part that ends before is a failure that brings
        // the rest down.
        if let Some(result) = tokio::select! {
            () = self.shutdown.cancelled() => None,
            ended = self.tasks.join_next() => ended,
        } {
            first_error = flatten(result).err();
            self.shutdown.cancel();
        }
        let all = async {
            while let Some(result) = self.tasks.join_next().await {
                if let Err(err) = flatten(result) {
                    first_error.get_or_insert(err);
                }
            }
        };
        if tokio::time::timeout(self.grace + DRAIN, all).await.is_err() {
            tracing::warn!(
                "some calls did not finish within the shutdown grace period; stopping anyway"
            );
            self.tasks.abort_all();
        }
        if let Some(sandbox) = self.sandbox.take()
            && let Err(err) = sandbox.stop().await
        {
            tracing::warn!(error = %err, "provider simulators did not stop cleanly");
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

fn flatten(result: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    result.map_err(anyhow::Error::from).and_then(|r| r)
}

/// Opens the store named by `store.url`: `sqlite:` for the single-process SQLite store,
/// `postgres:` or `postgresql:` for the PostgreSQL store that several replicas can share.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn RefundStore>> {
    let url = &config.store.url;
    if url.starts_with("sqlite:") {
        let store = SqliteStore::connect(&store_options(&config.store))
            .await
            .with_context(|| format!("cannot open store {url}"))?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        // The URL may carry a password: messages show it redacted.
        let store = PostgresStore::connect(&store_options(&config.store))
            .await
            .with_context(|| format!("cannot open store {}", config.store.redacted_url()))?;
        Ok(Arc::new(store))
    } else {
        anyhow::bail!(
            "store {}: the scheme must be sqlite:, postgres: or postgresql:",
            config.store.redacted_url()
        )
    }
}

/// Reads the provider tables of `config` with their providers' own rules: the part of the
/// configuration `Config::load` cannot check because it knows no provider. An error is one
/// line naming the key, as `Config::load`'s are.
pub fn check(config: &Config) -> Result<Vec<AccountPlan>, ConfigError> {
    config
        .providers
        .iter()
        .map(|(name, table)| AccountPlan::parse(name, &table.kind, &table.settings))
        .collect::<Result<_, _>>()
        .map_err(ConfigError)
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
        providers: t.providers.clone(),
    }))
}

/// Starts everything and returns once the listeners are bound.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let shutdown = CancellationToken::new();
    let metrics = crate::metrics::install();

    let grpc_listener = TcpListener::bind(config.server.grpc_listen)
        .await
        .with_context(|| format!("cannot listen on grpc_listen {}", config.server.grpc_listen))?;
    let http_listener = TcpListener::bind(config.server.http_listen)
        .await
        .with_context(|| format!("cannot listen on http_listen {}", config.server.http_listen))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    // Webhook URLs given to providers: the configured public URL, or this listener.
    let public_url = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{http_addr}"))
        .trim_end_matches('/')
        .to_owned();

    let store = open_store(&config).await?;
    let sandbox = if config.needs_sandbox() {
        let running = simulators::start(config.sandbox.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot start the provider simulators on {}",
                    config.sandbox.listen
                )
            })?;
        tracing::info!(addr = %running.addr, "provider simulators started for the sandbox accounts");
        Some(running)
    } else {
        None
    };
    let providers = build_providers(&config, sandbox.as_ref(), &public_url)?;
    let tenants = Arc::new(tenants(&config.tenants));
    if tenants.is_open() {
        tracing::warn!(
            "NO TENANTS CONFIGURED: the gateway runs OPEN. Every caller, with or without an API key, acts as tenant \"default\". Configure [[tenants]] before exposing it."
        );
    }

    let bus = EventBus::start(store.clone(), config.server.event_buffer, shutdown.clone()).await?;
    let refunds = Refunds::new(
        store,
        providers,
        bus,
        Settings {
            view_cache_entries: config.server.refund_cache_entries,
            ..Settings::from(&config.worker)
        },
        shutdown.clone(),
    )
    .await?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(SERVICE_NAME, ServingStatus::Serving)
        .await;
    health.set_service_status("", ServingStatus::Serving).await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let api = {
        use tonic::service::{InterceptorLayer, LayerExt as _};
        tower::ServiceBuilder::new()
            // Authentication first (health and reflection stay open); a refused call ends here.
            .layer(InterceptorLayer::new(Authenticate::new(
                tenants,
                shutdown.clone(),
            )))
            // One `rpc` span and the RPC metrics per call that reaches the handlers.
            .layer(crate::grpc::RpcLayer)
            .named_layer(RefundServiceServer::new(RefundApi::new(refunds.clone())))
    };

    // The servers stop accepting a moment after shutdown starts, so NOT_SERVING is seen.
    let stop_accepting = CancellationToken::new();
    let mut tasks = JoinSet::new();
    {
        let shutdown = shutdown.clone();
        let stop_accepting = stop_accepting.clone();
        tasks.spawn(async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down: health NOT_SERVING, refusing new calls");
            health
                .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
                .await;
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            tokio::time::sleep(DRAIN).await;
            stop_accepting.cancel();
            Ok(())
        });
    }
    {
        let stop = stop_accepting.clone();
        let incoming = TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
        // gRPC-Web for browsers: HTTP/1.1 accepted, CORS only for the configured origins.
        let cors = crate::grpc::web::cors_layer(&config.server.cors_allowed_origins)
            .map_err(anyhow::Error::msg)?;
        tasks.spawn(async move {
            Server::builder()
                .accept_http1(true)
                .layer(
                    tower::ServiceBuilder::new()
                        .option_layer(cors)
                        .layer(crate::grpc::web::GrpcWebLayer::new()),
                )
                .add_service(health_service)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha)
                .add_service(api)
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                .await
                .context("gRPC server failed")
        });
    }
    {
        let router = crate::http::router(refunds.clone(), metrics, shutdown.clone());
        let stop = stop_accepting.clone();
        tasks.spawn(async move {
            axum::serve(http_listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .context("HTTP server failed")
        });
    }
    {
        let refunds = refunds.clone();
        let worker_cfg = config.worker.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            crate::worker::run(refunds, worker_cfg, shutdown).await;
            Ok(())
        });
    }

    tracing::info!(grpc = %grpc_addr, http = %http_addr, store = %config.store.redacted_url(), "refund-gateway serving");
    Ok(Running {
        grpc_addr,
        http_addr,
        sandbox,
        refunds,
        shutdown,
        tasks,
        grace: Duration::from_millis(config.server.shutdown_grace_ms),
    })
}

/// The fully qualified name health reports on.
pub const SERVICE_NAME: &str = "refunds.v1.RefundService";

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::providers::ProviderKind;

    fn plans(text: &str) -> Result<Vec<AccountPlan>, ConfigError> {
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
    }
}
