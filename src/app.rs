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
//!
//! SIGHUP reloads the tenants and their limits ([`reload`]).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use simulators::RunningSandbox;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::{
    auth::TenantTable,
    config::Config,
    events::EventBus,
    grpc::{Authenticate, LimitLayer, RefundApi},
    limits::Limiter,
    pb::{self, refund_service_server::RefundServiceServer},
    refunds::Refunds,
    store::{PostgresStore, RefundStore, sqlite::SqliteStore},
};

mod options;
pub mod reload;

pub use options::{build_providers, check, limits, store_options, tenants};
use options::{idle_timeout, refund_settings, tls_options, worker_schedule};
pub use reload::Reloader;

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
    reloader: Reloader,
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

    /// What reloads the tenants and their limits.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
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

pub async fn start(config: Config) -> anyhow::Result<Running> {
    let shutdown = CancellationToken::new();
    let metrics = crate::metrics::install();
    let certificates = tls_options(&config)
        .map(crate::tls::Certificates::load)
        .transpose()
        .map_err(anyhow::Error::msg)?;

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
        .unwrap_or_else(|| {
            let scheme = if certificates.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{http_addr}")
        })
        .trim_end_matches('/')
        .to_owned();

    let mut store = open_store(&config).await?;
    if config.telemetry.otlp_endpoint.is_some() {
        // Traces show each store call.
        store = Arc::new(crate::store::traced::Traced::new(store));
    }
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
    let tenants = TenantTable::new(tenants(&config.tenants));
    let limiter = Arc::new(Limiter::new(limits(&config)));
    if tenants.load().is_open() {
        tracing::warn!(
            "NO TENANTS CONFIGURED: the gateway runs OPEN. Every caller, with or without an API key, acts as tenant \"default\". Configure [[tenants]] before exposing it."
        );
    }

    let bus = EventBus::start(store.clone(), config.server.event_buffer, shutdown.clone()).await?;
    let refunds = Refunds::new(
        store,
        providers,
        bus,
        refund_settings(&config),
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
                tenants.clone(),
                shutdown.clone(),
            )))
            // Then the tenant's limits, before any work is done.
            .layer(LimitLayer::new(limiter.clone()))
            // One `rpc` span and the RPC metrics per call that reaches the handlers.
            .layer(crate::grpc::RpcLayer)
            // A request above max_request_message_bytes: RESOURCE_EXHAUSTED with ErrorInfo.
            .layer(crate::grpc::TooLargeLayer)
            .named_layer(
                RefundServiceServer::new(RefundApi::new(refunds.clone()))
                    .max_decoding_message_size(config.server.max_request_message_bytes)
                    .max_encoding_message_size(config.server.max_response_message_bytes),
            )
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
    if let Some(certificates) = &certificates {
        let certificates = certificates.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            crate::tls::reload::watch(certificates, crate::tls::reload::POLL, shutdown).await;
            Ok(())
        });
    }
    let idle = idle_timeout(&config);
    let with_tls = |side| certificates.clone().map(|c| (c, side));
    {
        use crate::listener::{Side, accept};
        let stop = stop_accepting.clone();
        let incoming = accept(grpc_listener, with_tls(Side::Grpc), idle, stop.clone())?;
        let server = &config.server;
        let keepalive = Duration::from_millis(server.http2_keepalive_interval_ms);
        let keepalive_timeout = Duration::from_millis(server.http2_keepalive_timeout_ms);
        let max_streams = server.max_concurrent_streams;
        // gRPC-Web for browsers: HTTP/1.1 accepted, CORS only for the configured origins.
        let cors = crate::grpc::web::cors_layer(&config.server.cors_allowed_origins)
            .map_err(anyhow::Error::msg)?;
        let grpc_api = api.clone();
        tasks.spawn(async move {
            Server::builder()
                .accept_http1(true)
                .http2_keepalive_interval(Some(keepalive))
                .http2_keepalive_timeout(Some(keepalive_timeout))
                .max_concurrent_streams(max_streams)
                .layer(
                    tower::ServiceBuilder::new()
                        .option_layer(cors)
                        .layer(crate::grpc::web::GrpcWebLayer::new()),
                )
                .add_service(health_service)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha)
                .add_service(grpc_api)
                .serve_with_incoming_shutdown(incoming.into_stream(), stop.cancelled_owned())
                .await
                .context("gRPC server failed")
        });
    }
    {
        // The operator console, and the same RefundService stack for its gRPC-Web calls.
        let router = crate::http::router(refunds.clone(), metrics, shutdown.clone())
            .merge(crate::http::console::router(api));
        let stop = stop_accepting.clone();
        let incoming = crate::listener::accept(
            http_listener,
            with_tls(crate::listener::Side::Http),
            idle,
            stop.clone(),
        )?;
        tasks.spawn(async move {
            axum::serve(incoming, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .context("HTTP server failed")
        });
    }
    {
        let refunds = refunds.clone();
        let schedule = worker_schedule(&config.worker);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            crate::worker::run(refunds, schedule, shutdown).await;
            Ok(())
        });
    }

    tracing::info!(grpc = %grpc_addr, http = %http_addr, tls = certificates.is_some(), store = %config.store.redacted_url(), "refund-gateway serving");
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    Ok(Running {
        grpc_addr,
        http_addr,
        sandbox,
        refunds,
        reloader: Reloader {
            tenants,
            limits: limiter,
            running: Arc::new(config),
        },
        shutdown,
        tasks,
        grace,
    })
}

/// The fully qualified name health reports on.
pub const SERVICE_NAME: &str = "refunds.v1.RefundService";
