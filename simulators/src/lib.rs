//! Faithful HTTP simulators of refund-gateway's payment providers (D24, PayMongo, Compago),
//! for tests, benchmarks, the gateway's sandbox mode and `refund-gateway sandbox`. They are
//! served together on one listener, each under its own path prefix (`/compago`, `/d24`,
//! `/paymongo`), so one address serves them all and a provider account's base URL is
//! `http://ADDR/{name}`.
//!
//! Each simulator is written from its provider's public documentation (wire types, statuses,
//! error codes, amount formats, signatures) and owes nothing to the gateway's adapters: this
//! crate does not depend on the gateway, so a simulator cannot share an adapter's misreading.
//!
//! Each simulator keeps its state in memory, starts from fixed fixtures, and has an admin API
//! under its prefix at `/sandbox/...` (no key; meant for loopback) to create payments, read
//! counters and switch faults on.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use simulators::Simulator;
//! let running = simulators::start("127.0.0.1:0".parse().unwrap()).await?;
//! println!("{}", running.describe());
//! let compago_base = running.base_url(Simulator::Compago); // http://127.0.0.1:PORT/compago
//! # drop(compago_base);
//! running.stop().await
//! # }
//! ```

pub mod compago;
pub mod currency;
pub mod d24;
pub mod faults;
pub mod json_decimal;
pub mod paymongo;
#[cfg(test)]
mod testing;

use std::{
    fmt::Write as _,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::compago::{COMPAGO_SANDBOX_API_KEY, CompagoSim};
pub use self::d24::{D24_SANDBOX_LOGIN, D24_SANDBOX_SECRET, D24Sim};
pub use self::paymongo::{
    PAYMONGO_SANDBOX_SECRET_KEY, PAYMONGO_SANDBOX_WEBHOOK_SECRET, PayMongoSim,
};

/// A provider the sandbox simulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Simulator {
    Compago,
    D24,
    PayMongo,
}

impl Simulator {
    pub const ALL: [Simulator; 3] = [Self::Compago, Self::D24, Self::PayMongo];

    /// The provider's name, as in its path prefix (`compago`, `d24`, `paymongo`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compago => "compago",
            Self::D24 => "d24",
            Self::PayMongo => "paymongo",
        }
    }
}

/// The simulators and their shared state. Clones share the state.
#[derive(Clone, Debug, Default)]
pub struct Sandbox {
    pub compago: CompagoSim,
    pub d24: D24Sim,
    pub paymongo: PayMongoSim,
}

impl Sandbox {
    /// Every simulator, with its fixtures.
    pub fn new() -> Self {
        Self {
            compago: CompagoSim::new(),
            d24: D24Sim::new(),
            paymongo: PayMongoSim::new(),
        }
    }

    /// The path under which a provider's simulator is served.
    pub fn path_prefix(kind: Simulator) -> &'static str {
        match kind {
            Simulator::Compago => "/compago",
            Simulator::D24 => "/d24",
            Simulator::PayMongo => "/paymongo",
        }
    }

    /// The API key a provider's simulator accepts (for the gateway's sandbox accounts); for
    /// D24, the login (`X-Login`), whose signature secret is [`D24_SANDBOX_SECRET`].
    pub fn api_key(kind: Simulator) -> Option<&'static str> {
        match kind {
            Simulator::Compago => Some(COMPAGO_SANDBOX_API_KEY),
            Simulator::D24 => Some(D24_SANDBOX_LOGIN),
            Simulator::PayMongo => Some(PAYMONGO_SANDBOX_SECRET_KEY),
        }
    }

    /// Every simulator, each nested under its path prefix.
    pub fn router(&self) -> Router {
        Router::new()
            .nest(Self::path_prefix(Simulator::Compago), self.compago.router())
            .nest(Self::path_prefix(Simulator::D24), self.d24.router())
            .nest(
                Self::path_prefix(Simulator::PayMongo),
                self.paymongo.router(),
            )
    }

    /// Base URL paths, credentials and fixtures, for people.
    pub fn describe(&self) -> String {
        describe_at("")
    }

    /// Binds `listen` (port 0: any free port) and serves [`Sandbox::router`] until stopped.
    pub async fn serve(self, listen: SocketAddr) -> io::Result<RunningSandbox> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let router = self.router();
        let stopped = shutdown.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await
        });
        tracing::info!(%addr, "provider simulators listening");
        Ok(RunningSandbox {
            addr,
            sandbox: self,
            shutdown,
            task: Some(task),
        })
    }
}

/// Starts every simulator, with fixtures, on `listen`.
pub async fn start(listen: SocketAddr) -> io::Result<RunningSandbox> {
    Sandbox::new().serve(listen).await
}

/// Simulators being served. Dropping it stops the server (without waiting); [`stop`] waits
/// for requests in flight.
///
/// [`stop`]: RunningSandbox::stop
#[derive(Debug)]
pub struct RunningSandbox {
    /// Where the listener is bound.
    pub addr: SocketAddr,
    /// The state being served (tests may look at it directly).
    pub sandbox: Sandbox,
    shutdown: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RunningSandbox {
    /// `http://ADDR` as a client reaches it: an unspecified bind address (`0.0.0.0`) is
    /// reached on loopback.
    pub fn url(&self) -> String {
        client_url(self.addr)
    }

    /// The base URL a provider account uses, e.g. `http://127.0.0.1:PORT/compago`.
    pub fn base_url(&self, kind: Simulator) -> String {
        format!("{}{}", self.url(), Sandbox::path_prefix(kind))
    }

    /// Full base URLs, credentials and fixtures, for people.
    pub fn describe(&self) -> String {
        describe_at(&self.url())
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server to end.
    pub async fn stop(mut self) -> io::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `http://ADDR` for a bound address, with an unspecified IP replaced by loopback.
fn client_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// The description with base URLs under `origin` (`""` for paths only).
fn describe_at(origin: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Provider simulators (one listener; each provider under its own path)"
    );
    let _ = writeln!(out);
    for kind in Simulator::ALL {
        let base = format!("{origin}{}", Sandbox::path_prefix(kind));
        let name = kind.as_str();
        let _ = writeln!(out, "{name:<9} base_url = {base}");
        match kind {
            Simulator::D24 => {
                let _ = writeln!(
                    out,
                    "          login    = {D24_SANDBOX_LOGIN}  (header X-Login)"
                );
                let _ = writeln!(
                    out,
                    "          secret   = {D24_SANDBOX_SECRET}  (signs Authorization: D24 <hmac>)"
                );
                let _ = writeln!(
                    out,
                    "          admin    = {base}/sandbox/deposits (GET, POST), {base}/sandbox/refunds (GET),"
                );
                let _ = writeln!(
                    out,
                    "                     {base}/sandbox/refunds/{{id}}/status (POST), {base}/sandbox/refunds/{{id}}/notify (POST),"
                );
                let _ = writeln!(
                    out,
                    "                     {base}/sandbox/stats, {base}/sandbox/notifications, {base}/sandbox/timing (GET, POST, DELETE),"
                );
                let _ = writeln!(
                    out,
                    "                     {base}/sandbox/faults (GET, POST, DELETE), {base}/sandbox/reset (POST)"
                );
            }
            Simulator::Compago => {
                let _ = writeln!(
                    out,
                    "          api key  = {COMPAGO_SANDBOX_API_KEY}  (header x-api-key)"
                );
                let _ = writeln!(
                    out,
                    "          admin    = {base}/sandbox/payments (GET, POST), {base}/sandbox/stats,"
                );
                let _ = writeln!(
                    out,
                    "                     {base}/sandbox/faults (GET, POST, DELETE), {base}/sandbox/reset (POST)"
                );
                let _ = writeln!(
                    out,
                    "          load test = payment_method_id {}: ANY payment UUID under it is a CONFIRMED",
                    compago::fixtures::LOAD_TEST_METHOD
                );
                let _ = writeln!(
                    out,
                    "                      {} MXN payment, created on first sight (for benchmarks)",
                    compago::fixtures::LOAD_TEST_AMOUNT
                );
            }
            Simulator::PayMongo => {
                let _ = writeln!(
                    out,
                    "          secret key     = {PAYMONGO_SANDBOX_SECRET_KEY}  (Basic auth user, empty password)"
                );
                let _ = writeln!(
                    out,
                    "          webhook secret = {PAYMONGO_SANDBOX_WEBHOOK_SECRET}  (Paymongo-Signature, test mode)"
                );
                let _ = writeln!(
                    out,
                    "          admin    = {base}/sandbox/{{payments,refunds,stats,settings,outcomes,webhooks,faults,reset}}"
                );
            }
        }
    }
    let _ = writeln!(out);
    out.push_str(faults::describe());
    let _ = writeln!(
        out,
        "  stats           GET {origin}/<provider>/sandbox/stats: refund_posts_by_payment, refunds_by_payment"
    );
    let _ = writeln!(
        out,
        "                  ({{count, amount_minor, currency}}), webhooks_sent, faults_applied, and the provider's own"
    );
    let _ = writeln!(out);
    out.push_str(&compago::fixtures_table());
    let _ = writeln!(out);
    out.push_str(&d24::fixtures_table());
    let _ = writeln!(out);
    out.push_str(&paymongo::fixtures_table());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The description names the prefix, the key and every fixture.
    #[test]
    fn describe_lists_paths_key_and_fixtures() {
        let text = Sandbox::new().describe();
        assert!(text.contains("base_url = /compago"), "{text}");
        assert!(text.contains(COMPAGO_SANDBOX_API_KEY));
        assert!(text.contains(compago::fixtures::CONFIRMED_500));
        assert!(text.contains(compago::fixtures::REVOKED_METHOD));
        assert!(text.contains(compago::fixtures::LOAD_TEST_METHOD));
        assert!(text.contains("base_url = /d24"), "{text}");
        assert!(text.contains(D24_SANDBOX_LOGIN) && text.contains(D24_SANDBOX_SECRET));
        assert!(text.contains(d24::fixtures::CARD_MXN_INVOICE));
        assert!(text.contains("base_url = /paymongo"), "{text}");
        assert!(text.contains(PAYMONGO_SANDBOX_SECRET_KEY));
        assert!(text.contains(PAYMONGO_SANDBOX_WEBHOOK_SECRET));
        assert!(text.contains(paymongo::fixtures::PARTLY_REFUNDED));
        for switch in [
            "delay_ms",
            "fail_all_status",
            "fail_reads_status",
            "retry_after_s",
            "rate_limit_status",
            "fail_before_apply_status",
            "refund_delay_before_apply_ms",
            "refund_delay_ms",
            "fail_after_apply_status",
            "drop_after_apply",
            "malformed_refund_body",
            "corrupt_refund_body",
            "misreport_refund_amount",
            "lists_omit_api_refunds",
            "duplicate_webhooks",
            "reorder_webhooks",
            "times",
            "refunds_by_payment",
        ] {
            assert!(text.contains(switch), "{switch} not described");
        }
    }

    /// Started on port 0, the sandbox answers on its base URL, and stops when asked.
    #[tokio::test]
    async fn starts_serves_and_stops() {
        let running = start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = running.base_url(Simulator::Compago);
        assert!(base.starts_with("http://127.0.0.1:") && base.ends_with("/compago"));
        let stats = reqwest::get(format!("{base}/sandbox/stats")).await.unwrap();
        assert_eq!(stats.status(), 200);
        assert!(running.describe().contains(&format!("base_url = {base}")));
        let addr = running.addr;
        running.stop().await.unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    /// A sandbox bound on every interface is reached on loopback.
    #[test]
    fn unspecified_bind_is_reached_on_loopback() {
        assert_eq!(
            client_url("0.0.0.0:9090".parse().unwrap()),
            "http://127.0.0.1:9090"
        );
        assert_eq!(
            client_url("[::]:9090".parse().unwrap()),
            "http://[::1]:9090"
        );
        assert_eq!(
            client_url("127.0.0.2:1".parse().unwrap()),
            "http://127.0.0.2:1"
        );
    }
}
