//! How a provider account is configured and built, the same way for every provider: the keys
//! every account has (timeouts, limits, `sandbox`) are read and checked here once; the
//! provider's own keys are read by its `config.rs` with its own struct; a sandbox account
//! gets its base URL and credentials from the provider's module too. The list of providers
//! is [`super::REGISTRY`].

use std::{fmt, sync::Arc, time::Duration};

use figment::{Figment, providers::Serialized, value::Dict};
use serde::{Deserialize, de::DeserializeOwned};

use super::{Profile, Provider, ProviderAccount, ProviderKind, REGISTRY, isolation::Limits};
use simulators::RunningSandbox;

/// A provider's own part of `[providers.NAME]`, and how its adapter is built from it.
pub trait ProviderConfig: DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static {
    /// The provider (`kind = "..."`), and whether it posts notifications to
    /// `/webhooks/{kind}/{account}` (its `capabilities.webhooks`).
    const PROFILE: &'static Profile;

    /// The first key an account served by the real provider needs and lacks.
    fn missing(&self) -> Option<&'static str>;

    /// The account as the built-in simulator serves it: its base URL and credentials (and,
    /// where the simulator sends webhooks, where to send them).
    fn sandboxed(sandbox: &RunningSandbox, webhook_url: &str) -> Self;

    /// The adapter. `webhook_url` is where the provider should send notifications;
    /// `timeout` bounds each HTTP request. `Err` names a missing key.
    fn build(
        &self,
        webhook_url: &str,
        timeout: Duration,
    ) -> Result<Arc<dyn Provider>, &'static str>;
}

/// One line of the registry: a provider the gateway knows.
#[derive(Clone, Copy, Debug)]
pub struct Registration {
    pub kind: ProviderKind,
    /// Whether a webhook route is served for it.
    pub webhooks: bool,
    parse: ParseOwn,
}

/// Reads a provider's own keys (`[providers.NAME]` less the shared ones).
type ParseOwn = fn(&str, Dict) -> Result<Box<dyn Configured>, String>;

impl Registration {
    /// The registry line of the provider whose configuration is `C`.
    pub const fn of<C: ProviderConfig>() -> Self {
        Self {
            kind: C::PROFILE.kind,
            webhooks: C::PROFILE.capabilities.webhooks,
            parse: parse_own::<C>,
        }
    }

    /// The provider of `kind = "..."`.
    pub fn find(kind: &str) -> Option<&'static Registration> {
        REGISTRY.iter().find(|r| r.kind.as_str() == kind)
    }
}

/// The keys every account has, whatever its provider (`[providers.NAME]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Shared {
    timeout_ms: u64,
    /// Calls of this account in flight at once (`providers::isolation`).
    max_in_flight: usize,
    /// How long a call waits for a free slot before failing without being sent.
    queue_timeout_ms: u64,
    /// Provider faults in a row (unreachable, 5xx, timeouts) that open the circuit breaker.
    breaker_failures: usize,
    /// How long an open breaker fails calls at once before letting one probe through.
    breaker_open_ms: u64,
    /// Served by the built-in simulator (base URL and credentials are the simulator's).
    sandbox: bool,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            max_in_flight: 32,
            queue_timeout_ms: 1_000,
            breaker_failures: 5,
            breaker_open_ms: 30_000,
            sandbox: false,
        }
    }
}

const SHARED_KEYS: [&str; 6] = [
    "timeout_ms",
    "max_in_flight",
    "queue_timeout_ms",
    "breaker_failures",
    "breaker_open_ms",
    "sandbox",
];

/// The first of `keys` whose flag is set (a key missing, a value that must be above 0).
pub fn first_of(keys: &[(&'static str, bool)]) -> Option<&'static str> {
    keys.iter()
        .find_map(|(key, flagged)| flagged.then_some(*key))
}

impl Shared {
    /// The first key that must be above 0 and is not.
    fn first_zero(&self) -> Option<&'static str> {
        first_of(&[
            ("timeout_ms", self.timeout_ms == 0),
            ("max_in_flight", self.max_in_flight == 0),
            ("queue_timeout_ms", self.queue_timeout_ms == 0),
            ("breaker_failures", self.breaker_failures == 0),
            ("breaker_open_ms", self.breaker_open_ms == 0),
        ])
    }

    fn limits(&self) -> Limits {
        Limits {
            max_in_flight: self.max_in_flight,
            queue_timeout: Duration::from_millis(self.queue_timeout_ms),
            breaker_failures: self.breaker_failures,
            breaker_open: Duration::from_millis(self.breaker_open_ms),
            timeout: Duration::from_millis(self.timeout_ms),
        }
    }
}

/// A provider's own configuration, checked, waiting to be built.
trait Configured: fmt::Debug + Send + Sync {
    fn missing(&self) -> Option<&'static str>;

    fn build(
        &self,
        sandbox: Option<&RunningSandbox>,
        webhook_url: &str,
        timeout: Duration,
    ) -> Result<Arc<dyn Provider>, String>;
}

impl<C: ProviderConfig> Configured for C {
    fn missing(&self) -> Option<&'static str> {
        ProviderConfig::missing(self)
    }

    fn build(
        &self,
        sandbox: Option<&RunningSandbox>,
        webhook_url: &str,
        timeout: Duration,
    ) -> Result<Arc<dyn Provider>, String> {
        let provider = match sandbox {
            Some(running) => C::sandboxed(running, webhook_url).build(webhook_url, timeout),
            None => self.build(webhook_url, timeout),
        };
        provider.map_err(|key| format!("{key} is required (or set sandbox = true)"))
    }
}

fn parse_own<C: ProviderConfig>(key: &str, own: Dict) -> Result<Box<dyn Configured>, String> {
    Ok(Box::new(extract::<C>(key, own)?))
}

/// `[providers.NAME]`, read and checked: an account ready to be built.
#[derive(Debug)]
pub struct AccountPlan {
    pub name: String,
    pub kind: ProviderKind,
    pub sandbox: bool,
    pub limits: Limits,
    own: Box<dyn Configured>,
}

impl AccountPlan {
    /// Reads `[providers.NAME]` (`kind` and the rest of its keys). The message of an error
    /// is one line naming the key (`providers.NAME.timeout_ms must be above 0`).
    pub fn parse(name: &str, kind: &str, table: &Dict) -> Result<Self, String> {
        let key = format!("providers.{name}");
        let registration = Registration::find(kind).ok_or_else(|| {
            let known: Vec<&str> = REGISTRY.iter().map(|r| r.kind.as_str()).collect();
            format!(
                "{key}.kind: unknown provider kind {kind:?} (known: {})",
                known.join(", ")
            )
        })?;
        let (shared, own): (Dict, Dict) = table
            .clone()
            .into_iter()
            .partition(|(k, _)| SHARED_KEYS.contains(&k.as_str()));
        let shared: Shared = extract(&key, shared)?;
        if let Some(zero) = shared.first_zero() {
            return Err(format!("{key}.{zero} must be above 0"));
        }
        let own = (registration.parse)(&key, own)?;
        let plan = Self {
            name: name.to_owned(),
            kind: registration.kind,
            sandbox: shared.sandbox,
            limits: shared.limits(),
            own,
        };
        // A real account must have what its provider needs.
        if !plan.sandbox
            && let Some(missing) = plan.own.missing()
        {
            return Err(format!(
                "{key}.{missing} is required (or set sandbox = true)"
            ));
        }
        Ok(plan)
    }

    /// The account. A sandbox account is served by `sandbox`; `public_url` is the base of the
    /// webhook URL given to the provider (`{public_url}/webhooks/{kind}/{account}`).
    pub fn build(
        &self,
        sandbox: Option<&RunningSandbox>,
        public_url: &str,
    ) -> Result<ProviderAccount, String> {
        let sandbox = match (self.sandbox, sandbox) {
            (false, _) => None,
            (true, Some(running)) => Some(running),
            (true, None) => {
                return Err(format!(
                    "providers.{}: sandbox account without running simulators",
                    self.name
                ));
            }
        };
        let webhook_url = format!("{public_url}/webhooks/{}/{}", self.kind, self.name);
        let provider = self
            .own
            .build(sandbox, &webhook_url, self.limits.timeout)
            .map_err(|why| format!("providers.{}.{why}", self.name))?;
        Ok(ProviderAccount::new(
            self.name.clone(),
            provider,
            self.sandbox,
            self.limits,
        ))
    }
}

/// Reads `table` as `T`; an error is one line naming the key under `key`
/// (`providers.NAME.KEY: ...`).
fn extract<T: DeserializeOwned>(key: &str, table: Dict) -> Result<T, String> {
    Figment::from(Serialized::defaults(table))
        .extract()
        .map_err(|errors| {
            let first = errors.into_iter().next();
            let (path, kind) = match &first {
                Some(e) => (e.path.join("."), e.kind.to_string()),
                None => (String::new(), "cannot be read".to_owned()),
            };
            let at = if path.is_empty() {
                key.to_owned()
            } else {
                format!("{key}.{path}")
            };
            one_line(&format!("{at}: {kind}"))
        })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
