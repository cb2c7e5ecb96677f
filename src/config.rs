//! Configuration: a TOML file (docs/API.md "Configuration"; every key in the README's
//! "Configuration") with every key overridable from the
//! environment as `REFUND_GATEWAY__SECTION__KEY`, loaded with figment. With no file at all the
//! embedded default runs: loopback ports, a SQLite file in the working directory, open mode,
//! and the three sandbox provider accounts served by the built-in simulators.
//!
//! Secrets are `secrecy::SecretString`: their `Debug` prints `[REDACTED]`, so a config can be
//! logged whole.

use std::{collections::BTreeMap, net::SocketAddr, path::Path};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::Deserialize;

mod wire;
mod worker;

pub use wire::TlsConfig;
use wire::*;
pub use worker::WorkerConfig;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    /// API keys and what each tenant may use. None: open mode, one tenant `default`.
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// Provider accounts by name (the table name is the account name).
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderTable>,
    #[serde(default)]
    pub sandbox: SandboxConfig,
    #[serde(default)]
    pub worker: WorkerConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Per-tenant limits: the defaults every tenant gets unless its `[[tenants]]` entry
    /// overrides them.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The tables as read, so a reload can tell which keys changed.
    #[serde(skip)]
    raw: read::Raw,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_grpc_listen")]
    pub grpc_listen: SocketAddr,
    #[serde(default = "default_http_listen")]
    pub http_listen: SocketAddr,
    /// Base of the webhook URLs given to providers. Default: `http://{http_listen}`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// How long in-flight calls may take to finish after SIGTERM before the process exits.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// How many events the live bus keeps for subscribers that fall behind; one further
    /// behind catches up from the store.
    #[serde(default = "default_event_buffer")]
    pub event_buffer: usize,
    /// How many refund views GetRefund keeps in memory (0: none). Only used when the store
    /// is this process's alone (SQLite); with a shared store GetRefund reads the store.
    #[serde(default = "default_refund_cache_entries")]
    pub refund_cache_entries: u64,
    /// Web origins whose pages may call the gRPC listener through gRPC-Web from a browser
    /// (`"https://console.example.com"`, or `"*"` for any). Default: none, so only pages of
    /// the gateway's own origin may (no CORS headers are sent).
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// `[server.tls]`: TLS on both listeners, mTLS on the gRPC one. Absent: plaintext.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Limits on the wire (README "Limits on the wire"), each with a protective default.
    #[serde(default = "default_max_request_message_bytes")]
    pub max_request_message_bytes: usize,
    #[serde(default = "default_max_response_message_bytes")]
    pub max_response_message_bytes: usize,
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
    #[serde(default = "default_http2_keepalive_interval_ms")]
    pub http2_keepalive_interval_ms: u64,
    #[serde(default = "default_http2_keepalive_timeout_ms")]
    pub http2_keepalive_timeout_ms: u64,
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grpc_listen: default_grpc_listen(),
            http_listen: default_http_listen(),
            public_url: None,
            shutdown_grace_ms: default_shutdown_grace_ms(),
            event_buffer: default_event_buffer(),
            refund_cache_entries: default_refund_cache_entries(),
            cors_allowed_origins: Vec::new(),
            tls: None,
            max_request_message_bytes: default_max_request_message_bytes(),
            max_response_message_bytes: default_max_response_message_bytes(),
            max_concurrent_streams: default_max_concurrent_streams(),
            http2_keepalive_interval_ms: default_http2_keepalive_interval_ms(),
            http2_keepalive_timeout_ms: default_http2_keepalive_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
        }
    }
}

impl ServerConfig {
    /// `public_url`, or `http://{http_listen}` (`https://` with TLS) when unset (the
    /// gateway itself uses the address it actually bound, which differs when `http_listen`
    /// has port 0).
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{}", self.http_listen)
            })
            .trim_end_matches('/')
            .to_owned()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path` (created if missing) or `postgres://...` / `postgresql://...`.
    #[serde(default = "default_store_url")]
    pub url: String,
    /// SQLite: read connections (writes always go through one connection). PostgreSQL: the
    /// size of the connection pool, per gateway replica.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long a statement may wait for a lock (SQLite also: for a connection). PostgreSQL
    /// sets it as `lock_timeout`.
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
    /// PostgreSQL: how long one statement may run, lock waits included, before the server
    /// cancels it (`statement_timeout`); also how long a connection may sit idle inside a
    /// transaction (`idle_in_transaction_session_timeout`), so a replica cut off mid-write
    /// cannot hold its locks for long. Not used by SQLite.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// PostgreSQL: how long a call may wait for a pooled connection, opening a new one
    /// included, before it fails as unavailable. Not used by SQLite.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

impl StoreConfig {
    /// `url` with its password (if any) replaced by `***`, for logs and messages.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// A PostgreSQL URL may carry a password, as `user:password@host` or `?password=...`.
fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        // Everything before the last '@' is user info (an '@' further on would only make
        // this hide more than needed).
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
                None => head.to_owned(),
            },
            None => head.to_owned(),
        },
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("busy_timeout_ms", &self.busy_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .finish()
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: default_store_url(),
            max_connections: default_max_connections(),
            busy_timeout_ms: default_busy_timeout_ms(),
            statement_timeout_ms: default_statement_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
        }
    }
}

pub use tenants::TenantConfig;

/// One provider account, `[providers.NAME]`: `kind` picks the provider, whose module reads
/// and checks the rest of the keys with its own struct (`providers::registry`, called from
/// `app`). Kept raw here so that the configuration knows no provider.
#[derive(Clone, Deserialize)]
pub struct ProviderTable {
    pub kind: String,
    /// Every other key of the table.
    #[serde(flatten)]
    pub settings: figment::value::Dict,
}

impl ProviderTable {
    /// `sandbox = true`: served by the built-in simulators.
    pub fn is_sandbox(&self) -> bool {
        matches!(
            self.settings.get("sandbox"),
            Some(figment::value::Value::Bool(_, true))
        )
    }
}

/// Key names only: the values may be credentials.
impl std::fmt::Debug for ProviderTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTable")
            .field("kind", &self.kind)
            .field("keys", &self.settings.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The built-in provider simulators, started when an account has `sandbox = true`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Where the simulators listen (port 0: any free port).
    #[serde(default = "default_sandbox_listen")]
    pub listen: SocketAddr,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            listen: default_sandbox_listen(),
        }
    }
}

fn default_grpc_listen() -> SocketAddr {
    "127.0.0.1:50051".parse().expect("valid literal")
}
fn default_http_listen() -> SocketAddr {
    "127.0.0.1:8080".parse().expect("valid literal")
}
fn default_sandbox_listen() -> SocketAddr {
    "127.0.0.1:0".parse().expect("valid literal")
}
fn default_shutdown_grace_ms() -> u64 {
    10_000
}
/// Refund views GetRefund keeps unless configured otherwise (the service's own default).
pub const DEFAULT_REFUND_CACHE_ENTRIES: u64 = 100_000;
/// Events the live bus keeps unless configured otherwise (the bus's own default).
pub const DEFAULT_EVENT_BUFFER: usize = 4096;

fn default_refund_cache_entries() -> u64 {
    DEFAULT_REFUND_CACHE_ENTRIES
}
fn default_event_buffer() -> usize {
    DEFAULT_EVENT_BUFFER
}
fn default_store_url() -> String {
    "sqlite://refund-gateway.db".to_owned()
}
fn default_max_connections() -> u32 {
    8
}
fn default_busy_timeout_ms() -> u64 {
    5_000
}
fn default_statement_timeout_ms() -> u64 {
    10_000
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
/// The configuration `refund-gateway serve` runs with when given no file: loopback ports,
/// a SQLite file in the working directory, open mode (no tenants), and three provider
/// accounts served by the built-in simulators.
pub const EMBEDDED_DEFAULT: &str = r#"
[server]
grpc_listen = "127.0.0.1:50051"
http_listen = "127.0.0.1:8080"

[store]
url = "sqlite://refund-gateway.db"

[providers.compago]
kind = "compago"
sandbox = true

[providers.d24]
kind = "d24"
sandbox = true

[providers.paymongo]
kind = "paymongo"
sandbox = true
"#;

/// A configuration that cannot be used; the message is one line for the operator, naming
/// the key (`tenants[1].api_keys: ...`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Every problem found in a configuration, one [`ConfigError`] each. Shown on one line
/// (`; ` between them) where one line is wanted; [`ConfigErrors::lines`] gives them apart.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// One line per problem.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|e| e.0.as_str())
    }

    /// `Err` with every problem in `problems`, or `Ok(value)` when there is none.
    pub fn or<T>(problems: Vec<ConfigError>, value: T) -> Result<T, Self> {
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(Self(problems))
        }
    }
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<&str> = self.lines().collect();
        f.write_str(&lines.join("; "))
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(err: ConfigError) -> Self {
        Self(vec![err])
    }
}

impl Config {
    /// The embedded default: what `refund-gateway serve` runs with no config file.
    pub fn embedded_default() -> Self {
        Self::from_toml(EMBEDDED_DEFAULT).expect("the embedded default config is valid")
    }

    /// Loads `file` (or the embedded default when `None`), then the environment overrides,
    /// then checks the result ([`Config::problems`]).
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigErrors> {
        Self::read(file).and_then(Self::checked)
    }

    /// Reads `file` (or the embedded default) with the environment overrides, without the
    /// checks of [`Config::problems`]: every key has the right type, and nothing more is
    /// known. `app::check` then reports every remaining problem at once.
    pub fn read(file: Option<&Path>) -> Result<Self, ConfigErrors> {
        let base = match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!(
                        "config file {} does not exist",
                        path.display()
                    ))
                    .into());
                }
                Figment::from(Toml::file(path))
            }
            None => Figment::from(Toml::string(EMBEDDED_DEFAULT)),
        };
        read::from_figment(base.merge(Env::prefixed("REFUND_GATEWAY__").split("__")))
    }

    /// Parses a TOML string with the same rules (tests and tools).
    pub fn from_toml(text: &str) -> Result<Self, ConfigErrors> {
        read::from_figment(Figment::from(Toml::string(text))).and_then(Self::checked)
    }

    fn checked(self) -> Result<Self, ConfigErrors> {
        let problems = self.problems();
        ConfigErrors::or(problems, self)
    }

    /// The keys whose values differ between this configuration and `newer`, outside the
    /// tables a reload applies (`tenants`, `limits`): those need a restart. Names only,
    /// never values.
    pub fn changed_outside_tenants(&self, newer: &Config) -> Vec<String> {
        self.raw.changed(&newer.raw, &["tenants", "limits"])
    }

    /// Whether any provider account is served by the built-in simulators.
    pub fn needs_sandbox(&self) -> bool {
        self.providers.values().any(ProviderTable::is_sandbox)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

mod check;
mod limits;
mod read;
mod telemetry;
mod tenants;

pub use limits::LimitsConfig;
pub use telemetry::TelemetryConfig;

#[cfg(test)]
mod tests;
