//! The one in-process gateway of the tests (zero2prod's `spawn_app`): `Gateway::start(Setup)`
//! runs `app::start` with gRPC and HTTP on 127.0.0.1:0, a temporary SQLite file (or a given
//! PostgreSQL database), provider accounts served by the simulators over real HTTP, and fast
//! worker settings; it hands back a connected client and direct access to the simulators'
//! state, counters and fault switches. Every knob a test needs is a field of [`Setup`].

use std::time::{Duration, Instant};

use refund_gateway::{
    app::{self, Running},
    config::Config,
    pb::{self, refund_service_client::RefundServiceClient},
};
use tonic::{
    Request, Status,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

use super::sims::{self, CompagoSim, D24Sim, OwnSims, PayMongoSim};

/// A gRPC client of the gateway; it sends the API key it was made with, if any.
pub type Client = RefundServiceClient<InterceptedService<Channel, ApiKey>>;

/// Where the store lives.
#[derive(Clone, Debug, Default)]
pub enum Store {
    /// A SQLite file in the gateway's temporary directory (kept across [`Gateway::restart`]).
    #[default]
    Sqlite,
    /// A PostgreSQL database at this URL.
    Postgres(String),
}

/// Where a provider account sends its calls.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// `sandbox = true`: the simulators the gateway starts itself.
    Sandbox,
    /// Simulators the test harness starts beside the gateway (they outlive it), reached
    /// with a plain `base_url` as if they were the real provider.
    OwnSim,
    /// A fixed base URL.
    Url(String),
}

/// One provider account of the gateway.
#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    /// `compago`, `d24` or `paymongo`.
    pub kind: &'static str,
    pub endpoint: Endpoint,
    /// The credential keys; `None` for the sandbox's own credentials.
    pub credentials: Option<String>,
    /// Further keys of the account's table; `timeout_ms` comes from [`Setup::timeout_ms`]
    /// unless given here.
    pub keys: String,
}

impl Account {
    /// An account named for its kind, served by the gateway's own sandbox.
    pub fn sandbox(kind: &'static str) -> Self {
        Self {
            name: kind.to_owned(),
            kind,
            endpoint: Endpoint::Sandbox,
            credentials: None,
            keys: String::new(),
        }
    }

    /// The three sandbox accounts `compago`, `d24` and `paymongo`.
    pub fn all_sandbox() -> Vec<Self> {
        ["compago", "d24", "paymongo"]
            .into_iter()
            .map(Self::sandbox)
            .collect()
    }

    fn table(&self, setup: &Setup, own: Option<&OwnSims>) -> String {
        let mut out = format!("[providers.{}]\nkind = \"{}\"\n", self.name, self.kind);
        match &self.endpoint {
            Endpoint::Sandbox => out.push_str("sandbox = true\n"),
            Endpoint::OwnSim => {
                let own = own.expect("own simulators are started for OwnSim accounts");
                out.push_str(&format!("base_url = \"{}\"\n", own.base_url(self.kind)));
            }
            Endpoint::Url(url) => out.push_str(&format!("base_url = \"{url}\"\n")),
        }
        if !matches!(self.endpoint, Endpoint::Sandbox) {
            let credentials = self
                .credentials
                .clone()
                .unwrap_or_else(|| sims::credentials(self.kind));
            out.push_str(&credentials);
            out.push('\n');
        }
        if !self.keys.contains("timeout_ms") {
            out.push_str(&format!("timeout_ms = {}\n", setup.timeout_ms));
        }
        out.push_str(&self.keys);
        out.push('\n');
        // The per-kind extra keys of the three default accounts.
        let extra = match self.name.as_str() {
            "compago" => &setup.compago,
            "d24" => &setup.d24,
            "paymongo" => &setup.paymongo,
            _ => "",
        };
        out.push_str(extra);
        out.push_str("\n\n");
        out
    }
}

/// How a test's gateway is set up.
#[derive(Clone, Debug)]
pub struct Setup {
    pub accounts: Vec<Account>,
    /// Every account's per-request timeout (unless its keys say otherwise).
    pub timeout_ms: u64,
    /// Extra keys for the accounts named `compago`, `d24` and `paymongo`
    /// (`max_in_flight = 4`, ...).
    pub compago: String,
    pub d24: String,
    pub paymongo: String,
    pub store: Store,
    /// Further keys of `[store]` (`connect_timeout_ms = 300`, ...).
    pub store_keys: String,
    /// `[[tenants]]` tables; empty for an open gateway (every caller is tenant "default").
    pub tenants: String,
    /// The worker's tick.
    pub tick_ms: u64,
    /// The worker's first wait before asking about a refund that is not final.
    pub first_check_ms: u64,
    /// The worker's longest wait between two checks.
    pub max_check_interval_ms: u64,
    pub max_reconcile_attempts: Option<u32>,
    pub lease_ms: Option<u64>,
    pub shutdown_grace_ms: Option<u64>,
    /// `server.event_buffer`.
    pub event_buffer: Option<usize>,
    /// `worker.approval_expires_after_ms`.
    pub approval_expires_after_ms: Option<u64>,
    /// Further TOML appended to the config.
    pub extra: String,
    /// Further `[server]` keys (`cors_allowed_origins = [...]`).
    pub server: String,
    /// The HTTP listener's address; default `127.0.0.1:0` (a free port each start). A fixed
    /// one keeps a browser's page reachable across [`Gateway::restart`].
    pub http_listen: Option<String>,
    /// The `[limits]` keys. Default: far above anything a test sends, since these tests are
    /// about other things (the limits are tested through the binary, tests/reload.rs).
    pub limits: String,
}

impl Default for Setup {
    /// The three sandbox accounts, an open gateway on SQLite, a fast worker.
    fn default() -> Self {
        Self {
            accounts: Account::all_sandbox(),
            timeout_ms: 2_000,
            compago: String::new(),
            d24: String::new(),
            paymongo: String::new(),
            store: Store::Sqlite,
            store_keys: String::new(),
            tenants: String::new(),
            tick_ms: 50,
            first_check_ms: 100,
            max_check_interval_ms: 400,
            max_reconcile_attempts: Some(20),
            lease_ms: None,
            shutdown_grace_ms: Some(1_000),
            event_buffer: None,
            approval_expires_after_ms: None,
            extra: String::new(),
            server: String::new(),
            http_listen: None,
            limits: "requests_per_second = 1000000\nburst = 1000000\nwatch_streams = 1000000"
                .to_owned(),
        }
    }
}

impl Setup {
    fn config(&self, dir: &tempfile::TempDir, own: Option<&OwnSims>) -> String {
        let mut server = self.server.clone();
        if !server.is_empty() {
            server.push('\n');
        }
        if let Some(grace) = self.shutdown_grace_ms {
            server.push_str(&format!("shutdown_grace_ms = {grace}\n"));
        }
        if let Some(buffer) = self.event_buffer {
            server.push_str(&format!("event_buffer = {buffer}\n"));
        }
        let store = match &self.store {
            Store::Sqlite => format!("sqlite://{}", dir.path().join("gateway.db").display()),
            Store::Postgres(url) => url.clone(),
        };
        let mut worker = format!(
            "tick_ms = {}\nfirst_check_ms = {}\nmax_check_interval_ms = {}\n",
            self.tick_ms, self.first_check_ms, self.max_check_interval_ms
        );
        if let Some(n) = self.max_reconcile_attempts {
            worker.push_str(&format!("max_reconcile_attempts = {n}\n"));
        }
        if let Some(ms) = self.lease_ms {
            worker.push_str(&format!("lease_ms = {ms}\n"));
        }
        if let Some(ms) = self.approval_expires_after_ms {
            worker.push_str(&format!("approval_expires_after_ms = {ms}\n"));
        }
        let accounts: String = self.accounts.iter().map(|a| a.table(self, own)).collect();
        format!(
            r#"
[server]
grpc_listen = "127.0.0.1:0"
http_listen = "{http_listen}"
{server}
[store]
url = "{store}"
{store_keys}

[sandbox]
listen = "127.0.0.1:0"

[worker]
{worker}
[limits]
{limits}
{tenants}

{accounts}
{extra}
"#,
            tenants = self.tenants,
            http_listen = self.http_listen.as_deref().unwrap_or("127.0.0.1:0"),
            limits = self.limits,
            store_keys = self.store_keys,
            extra = self.extra,
        )
    }
}

/// A gateway running in the test's process.
pub struct Gateway {
    pub running: Running,
    /// A client without an API key (an open gateway's every caller).
    pub client: Client,
    pub http: reqwest::Client,
    pub grpc_url: String,
    pub http_url: String,
    /// The base of the simulators' URLs (`{sandbox_url}/{provider}/...`).
    pub sandbox_url: String,
    setup: Setup,
    own_sims: Option<OwnSims>,
    dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start(setup: Setup) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let needs_own = setup
            .accounts
            .iter()
            .any(|a| matches!(a.endpoint, Endpoint::OwnSim));
        let own_sims = if needs_own {
            Some(OwnSims::start().await)
        } else {
            None
        };
        Self::start_in(setup, dir, own_sims).await
    }

    async fn start_in(setup: Setup, dir: tempfile::TempDir, own_sims: Option<OwnSims>) -> Self {
        super::logs::install();
        refund_gateway::telemetry::init();
        let config = Config::from_toml(&setup.config(&dir, own_sims.as_ref()))
            .expect("the test config is valid");
        let running = app::start(config).await.expect("the gateway starts");
        let grpc_url = format!("http://{}", running.grpc_addr);
        let http_url = format!("http://{}", running.http_addr);
        let sandbox_url = match (&own_sims, &running.sandbox) {
            (Some(own), _) => own.url(),
            (None, Some(served)) => format!("http://{}", served.addr),
            (None, None) => String::new(),
        };
        let client = connect(&grpc_url, None).await;
        Self {
            running,
            client,
            http: reqwest::Client::new(),
            grpc_url,
            http_url,
            sandbox_url,
            setup,
            own_sims,
            dir,
        }
    }

    /// Stops the gateway gracefully and starts a new one with the same setup on the same
    /// store (the gateway's own simulators start afresh).
    pub async fn restart(self) -> Self {
        let Self {
            running,
            setup,
            own_sims,
            dir,
            ..
        } = self;
        running.shutdown();
        running.wait().await.expect("clean shutdown");
        Self::start_in(setup, dir, own_sims).await
    }

    /// A client on a connection of its own (HTTP/2 multiplexes, but a test that measures
    /// latencies should not share one connection's flow control with a stalled stream).
    pub async fn new_client(&self) -> Client {
        connect(&self.grpc_url, None).await
    }

    /// A client that presents `key` (`authorization: Bearer <key>`).
    pub async fn keyed_client(&self, key: &str) -> Client {
        connect(&self.grpc_url, Some(format!("Bearer {key}"))).await
    }

    pub fn compago(&self) -> &CompagoSim {
        match &self.own_sims {
            Some(own) => own.compago(),
            None => sims::compago(self.served()),
        }
    }

    pub fn d24(&self) -> &D24Sim {
        match &self.own_sims {
            Some(own) => own.d24(),
            None => sims::d24(self.served()),
        }
    }

    pub fn paymongo(&self) -> &PayMongoSim {
        match &self.own_sims {
            Some(own) => own.paymongo(),
            None => sims::paymongo(self.served()),
        }
    }

    fn served(&self) -> &sims::RunningSandbox {
        self.running
            .sandbox
            .as_ref()
            .expect("sandbox accounts start simulators")
    }

    /// The gateway's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.http_url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    pub async fn get(&self, id: &str) -> pb::Refund {
        self.client
            .clone()
            .get_refund(pb::GetRefundRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner()
            .refund
            .unwrap()
    }

    /// Waits (at most `within`) until refund `id` satisfies `pred`.
    pub async fn wait_for(
        &self,
        id: &str,
        within: Duration,
        pred: impl Fn(&pb::Refund) -> bool,
    ) -> pb::Refund {
        poll_refund(&mut self.client.clone(), id, within, pred).await
    }

    /// Every stored event of refund `id`, from the event feed (WatchRefunds from sequence 0,
    /// read until it goes quiet).
    pub async fn events_of(&self, id: &str) -> Vec<pb::RefundEvent> {
        let mut events = whole_feed(&self.client, Duration::from_millis(300)).await;
        events.retain(|event| event.refund.as_ref().unwrap().id == id);
        events
    }

    /// Creates a Compago payment of `amount` (e.g. "10.00") in `status` in the simulator,
    /// through its admin API, and returns its reference.
    pub async fn create_compago_payment(&self, amount: &str, status: &str) -> pb::PaymentReference {
        let created: serde_json::Value = self
            .http
            .post(format!("{}/compago/sandbox/payments", self.sandbox_url))
            .json(&serde_json::json!({ "amount": amount, "status": status }))
            .send()
            .await
            .expect("sandbox admin API")
            .error_for_status()
            .expect("payment created")
            .json()
            .await
            .expect("json");
        pb::PaymentReference {
            payment_id: created["id"].as_str().expect("id").to_owned(),
            payment_method_id: created["payment_method_id"]
                .as_str()
                .expect("payment_method_id")
                .to_owned(),
            invoice_id: String::new(),
        }
    }
}

/// Every event `client`'s tenant may see, from WatchRefunds after sequence 0, read until no
/// message arrives for `quiet`.
pub async fn whole_feed(client: &Client, quiet: Duration) -> Vec<pb::RefundEvent> {
    let mut stream = client
        .clone()
        .watch_refunds(pb::WatchRefundsRequest {
            after_sequence: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Ok(Ok(Some(message))) = tokio::time::timeout(quiet, stream.message()).await {
        events.push(message.event.unwrap());
    }
    events
}

/// Polls GetRefund until refund `id` satisfies `pred` (at most `within`).
pub async fn poll_refund(
    client: &mut Client,
    id: &str,
    within: Duration,
    pred: impl Fn(&pb::Refund) -> bool,
) -> pb::Refund {
    let deadline = Instant::now() + within;
    loop {
        let refund = client
            .get_refund(pb::GetRefundRequest { id: id.to_owned() })
            .await
            .expect("get refund")
            .into_inner()
            .refund
            .expect("refund");
        if pred(&refund) {
            return refund;
        }
        assert!(
            Instant::now() < deadline,
            "refund {id} never got there in {within:?}; last seen {refund:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn connect(url: &str, authorization: Option<String>) -> Client {
    let channel = Channel::from_shared(url.to_owned())
        .expect("url")
        .connect()
        .await
        .expect("connect to the gateway");
    RefundServiceClient::with_interceptor(channel, ApiKey(authorization))
}

/// Adds the `authorization` header, if any, to every call.
#[derive(Clone, Debug)]
pub struct ApiKey(Option<String>);

impl Interceptor for ApiKey {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut()
                .insert("authorization", v.parse().expect("ascii"));
        }
        Ok(req)
    }
}
