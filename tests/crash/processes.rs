//! The processes the crash test runs: the simulators (one process that outlives every
//! gateway) and the gateway (started, SIGKILLed and started again on one config and one
//! SQLite file), and what a dead gateway's store says about where it died.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs::File,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use simulators::{
    COMPAGO_SANDBOX_API_KEY, D24_SANDBOX_LOGIN, D24_SANDBOX_SECRET, PAYMONGO_SANDBOX_SECRET_KEY,
    PAYMONGO_SANDBOX_WEBHOOK_SECRET,
};

use crate::{
    API_KEY, SAFETY_NET, TIMEOUT_MS,
    support::process::{BIN, accounts_on},
};

fn log_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A free port below Linux's ephemeral range (32768 and up), so no outgoing connection of
/// another process takes it while the gateway is down between a kill and its restart.
pub fn free_port() -> u16 {
    loop {
        let port = rand::random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

// === impl Simulators ===

/// `refund-gateway sandbox`: the three simulators, in a process of their own.
pub struct Simulators {
    child: Child,
    pub compago: String,
    pub d24: String,
    pub paymongo: String,
    http: reqwest::Client,
}

impl Simulators {
    /// Starts them and reads the base URLs they print; checks that the credentials the test
    /// configures are the printed ones.
    pub fn start(log: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["sandbox", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(File::create(log).expect("log file"))
            .spawn()
            .expect("the sandbox starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut printed = String::new();
        let mut urls = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while urls.len() < 3 || !printed.contains(PAYMONGO_SANDBOX_WEBHOOK_SECRET) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the sandbox did not print its accounts:\n{printed}"));
            writeln!(printed, "{line}").unwrap();
            // `compago   base_url = http://127.0.0.1:PORT/compago`
            if let Some((name, rest)) = line.split_once("base_url = ") {
                let url = rest.split_whitespace().next().expect("a URL").to_owned();
                urls.insert(name.trim().to_owned(), url);
            }
        }
        for secret in [
            COMPAGO_SANDBOX_API_KEY,
            D24_SANDBOX_LOGIN,
            D24_SANDBOX_SECRET,
            PAYMONGO_SANDBOX_SECRET_KEY,
        ] {
            assert!(printed.contains(secret), "{secret} not printed:\n{printed}");
        }
        Self {
            child,
            compago: urls["compago"].clone(),
            d24: urls["d24"].clone(),
            paymongo: urls["paymongo"].clone(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: reqwest::Method, url: String, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {url}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn post(&self, url: String, body: Value) -> Value {
        self.send(reqwest::Method::POST, url, Some(body)).await
    }

    pub async fn get(&self, url: String) -> Value {
        self.send(reqwest::Method::GET, url, None).await
    }

    /// D24 card refunds of IN_PROGRESS deposits complete after a while, and notifications
    /// are sent again with backoff (200 ms, 1 s, 5 s, ...) while no gateway answers. PayMongo
    /// refunds settle after a second, and its signed webhooks go to the gateway's fixed port.
    pub async fn configure(&self, http_port: u16) {
        self.post(
            format!("{}/sandbox/timing", self.d24),
            json!({
                "card_completed_after_ms": 1200,
                "notify_retry_ms": 200,
                "notify_max_retries": 6,
            }),
        )
        .await;
        self.post(
            format!("{}/sandbox/settings", self.paymongo),
            json!({ "settle_delay_ms": 1000, "webhook_max_attempts": 8, "webhook_retry_ms": 200 }),
        )
        .await;
        self.post(
            format!("{}/sandbox/webhooks", self.paymongo),
            json!({ "urls": [format!("http://127.0.0.1:{http_port}/webhooks/paymongo/paymongo")] }),
        )
        .await;
    }

    /// Sets each simulator's answer delays (its fault switches, replaced whole).
    pub async fn set_delays(&self, delays: Delays) {
        self.post(
            format!("{}/sandbox/faults", self.compago),
            json!({ "refund_delay_ms": delays.compago, "delay_ms": delays.every }),
        )
        .await;
        self.post(
            format!("{}/sandbox/faults", self.d24),
            json!({ "refund_delay_ms": delays.d24, "delay_ms": delays.every }),
        )
        .await;
        self.post(
            format!("{}/sandbox/faults", self.paymongo),
            json!({ "delay_after_apply_ms": delays.paymongo, "delay_ms": delays.every }),
        )
        .await;
    }

    pub async fn clear_faults(&self) {
        for base in [&self.compago, &self.d24, &self.paymongo] {
            self.send(
                reqwest::Method::DELETE,
                format!("{base}/sandbox/faults"),
                None,
            )
            .await;
        }
    }
}

impl Drop for Simulators {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long each simulator holds its refund answers after applying the refund, and every
/// answer (reads too, so the worker's checks take a while).
#[derive(Clone, Copy, Debug, Default)]
pub struct Delays {
    pub compago: u64,
    pub d24: u64,
    pub paymongo: u64,
    pub every: u64,
}

impl Delays {
    /// The longest a refund answer takes.
    pub fn longest(self) -> u64 {
        self.compago.max(self.d24).max(self.paymongo) + self.every
    }
}

// === impl Gateway ===

/// The gateway binary, started again and again on one config and one SQLite file.
pub struct Gateway {
    config: PathBuf,
    pub db: PathBuf,
    logs: PathBuf,
    pub grpc_url: String,
    child: Option<Child>,
    /// How many times it was started.
    pub starts: usize,
    started_at: Instant,
}

/// How a gateway the test meant to kill ended.
pub enum Ended {
    /// SIGKILL, after this long up.
    Killed(Duration),
    /// Someone else stopped it first with SIGTERM or SIGINT (a shared machine); it shut down
    /// cleanly, which is no crash.
    StoppedFromOutside,
}

impl Gateway {
    /// Writes the config: fixed ports (webhooks and notifications must reach whichever
    /// gateway is alive), non-sandbox accounts on the simulators with the printed
    /// credentials, a short provider timeout and a fast worker.
    pub fn new(dir: &Path, sims: &Simulators, grpc_port: u16, http_port: u16) -> Self {
        let db = dir.join("gateway.db");
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
grpc_listen = "127.0.0.1:{grpc_port}"
http_listen = "127.0.0.1:{http_port}"

[store]
url = "sqlite://{db}"

[worker]
tick_ms = 50
first_check_ms = 100
max_check_interval_ms = 500
# Far more checks than a run makes: nothing ends in REQUIRES_REVIEW because the gateway was
# down a lot.
max_reconcile_attempts = 100000
lease_ms = 2000

[[tenants]]
id = "crash"
api_keys = ["{API_KEY}"]

{accounts}"#,
                db = db.display(),
                accounts = accounts_on(&sims.compago, &sims.d24, &sims.paymongo, TIMEOUT_MS),
            ),
        )
        .expect("config written");
        Self {
            config,
            db,
            logs: dir.to_owned(),
            grpc_url: format!("http://127.0.0.1:{grpc_port}"),
            child: None,
            starts: 0,
            started_at: Instant::now(),
        }
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.logs.join(format!("gateway-{start:03}.log"))
    }

    fn current_log(&self) -> PathBuf {
        self.log_path(self.starts)
    }

    /// Starts it and waits for `refund-gateway serving`.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.starts += 1;
        let log = File::create(self.current_log()).expect("log file");
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info,sqlx=warn,h2=warn,hyper=warn,tower=warn")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("the gateway starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !log_text(&self.current_log()).contains("refund-gateway serving") {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "gateway start {} exited with {status}:\n{}",
                    self.starts,
                    log_text(&self.current_log())
                );
            }
            assert!(
                Instant::now() < deadline,
                "gateway start {} is not serving:\n{}",
                self.starts,
                log_text(&self.current_log())
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.started_at = Instant::now();
    }

    /// SIGKILL (what std's `Child::kill` sends on Unix), and wait until it is gone.
    pub fn kill(&mut self) -> Ended {
        use std::os::unix::process::ExitStatusExt as _;
        let mut child = self.child.take().expect("running");
        if let Some(status) = child.try_wait().unwrap() {
            let log = log_text(&self.current_log());
            assert!(
                status.success() && log.contains("shutting down"),
                "gateway start {} died by itself ({status}):\n{log}",
                self.starts
            );
            eprintln!(
                "crash test: gateway start {} was stopped from outside (SIGTERM/SIGINT); restarting it",
                self.starts
            );
            return Ended::StoppedFromOutside;
        }
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reaped");
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
        Ended::Killed(self.started_at.elapsed())
    }

    /// Waits (up to 3 s) for a new line of the current log with one of `needles`.
    pub async fn await_log_line(&self, needles: &[&str]) {
        let log = self.current_log();
        let count = || {
            let text = log_text(&log);
            needles
                .iter()
                .map(|n| text.matches(n).count())
                .sum::<usize>()
        };
        let before = count();
        let deadline = Instant::now() + Duration::from_secs(3);
        while count() == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// How many times `needle` appears in every log so far.
    pub fn count_in_logs(&self, needle: &str) -> usize {
        (1..=self.starts)
            .map(|n| log_text(&self.log_path(n)).matches(needle).count())
            .sum()
    }

    /// The log lines, of every start, that mention one of `needles` (the first 100).
    pub fn lines_about(&self, needles: &[&str]) -> String {
        let mut out = String::new();
        let mut shown = 0;
        for n in 1..=self.starts {
            for line in log_text(&self.log_path(n)).lines() {
                if needles.iter().any(|needle| line.contains(needle)) {
                    shown += 1;
                    if shown > 100 {
                        out.push_str("...\n");
                        return out;
                    }
                    writeln!(out, "[start {n}] {line}").unwrap();
                }
            }
        }
        out
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Keeps the temporary directory (logs, store, config) when the test fails, and says where.
pub struct KeepOnFailure(pub Option<tempfile::TempDir>);

impl KeepOnFailure {
    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("present").path()
    }
}

impl Drop for KeepOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.0.take()
        {
            eprintln!(
                "crash test: logs and store kept in {}",
                dir.keep().display()
            );
        }
    }
}

// === where a kill landed ===

/// What the dead gateway's store held when it died.
#[derive(Clone, Copy, Debug, Default)]
pub struct AtDeath {
    pub refunds: i64,
    /// Recorded, its submission started (or about to), the outcome not recorded.
    pub sending: i64,
    /// PENDING or PROCESSING with a known submission: being followed up.
    pub following: i64,
    /// Leased by the worker: a check was in progress (or about to start).
    pub leased: i64,
    /// CreateRefund calls that had claimed their request_id and not finished.
    pub open_keys: i64,
}

/// Reads [`AtDeath`] from the store of a gateway that is not running.
pub async fn at_death(db: &Path) -> AtDeath {
    use sqlx::{Connection as _, sqlite::SqliteConnectOptions};
    let mut conn = sqlx::SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(db))
        .await
        .expect("the dead gateway's store opens");
    // A worker's lease runs to now + lease_ms (2 s), while a scheduled check is at most ~1 s
    // away; a refund just recorded has its safety-net check at created_at + SAFETY_NET.
    let leased_after = chrono::Utc::now().timestamp_micros() + 1_200_000;
    let (refunds, sending, following, leased): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), \
           COALESCE(SUM(submission = 'sending'), 0), \
           COALESCE(SUM(status IN ('PENDING', 'PROCESSING') AND submission <> 'sending'), 0), \
           COALESCE(SUM(next_check_at > ? AND NOT (submission = 'sending' \
             AND next_check_at = created_at + ?)), 0) \
         FROM refunds",
    )
    .bind(leased_after)
    .bind(i64::try_from(SAFETY_NET.as_micros()).expect("small"))
    .fetch_one(&mut conn)
    .await
    .expect("counts");
    let open_keys: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys WHERE completed = 0")
            .fetch_one(&mut conn)
            .await
            .expect("keys");
    conn.close().await.expect("closed");
    AtDeath {
        refunds,
        sending,
        following,
        leased,
        open_keys,
    }
}
