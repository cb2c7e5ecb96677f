//! Restart with N non-final refunds: how long a restarted gateway takes to reconcile them.
//!
//! 1. Starts the simulators as a process of their own (`refund-gateway sandbox`, on the
//!    loader's core) and makes PayMongo refunds stay `pending` (settle delay 600 s) with its
//!    webhooks off, so the gateway can only learn the outcome by asking (its worker).
//! 2. Creates N PayMongo payments of 100.00 PHP (admin API).
//! 3. Starts the gateway (non-sandbox accounts pointing at the simulators, the worker's
//!    default settings unless `--worker-toml` says otherwise, a fresh SQLite file), pinned to
//!    the server core, and creates N refunds, one per payment: each ends PROCESSING.
//!    Then it waits until the gateway's worker has checked `--kill-after-checks` of them
//!    (default N/4; `refund_gateway_worker_checks_total`), so the kill lands in the middle of
//!    a worker pass, with refunds claimed under a lease (the worst moment for a restart).
//! 4. SIGKILLs the gateway, settles every pending refund at the simulator (admin API: now
//!    `succeeded`), and reads from the dead gateway's store when each refund's next check is
//!    due.
//! 5. Restarts the gateway on the same store and polls `/metrics`
//!    (`refund_gateway_refunds{provider="paymongo",status}`) every 100 ms until no refund is
//!    PENDING or PROCESSING: the time from the restart (process spawned) is the figure.
//!
//! ```text
//! restart --bin target/release/refund-gateway --dir /tmp/x [--count 10000]
//!         [--grpc-port 50071] [--http-port 8095] [--server-cpu 0] [--sim-cpu 1]
//!         [--concurrency 64] [--timeout 300] [--worker-toml "tick_ms = 500"] [--label rep1]
//!         [--kill-after-checks N/4]
//! ```

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt as _, stream};
use refund_gateway::pb::{self, refund_service_client::RefundServiceClient};
use refund_gateway_bench::{Args, Ids, Scrape, connect, emit};
use serde_json::{Value, json};
use simulators::{
    COMPAGO_SANDBOX_API_KEY, D24_SANDBOX_LOGIN, D24_SANDBOX_SECRET, PAYMONGO_SANDBOX_SECRET_KEY,
    PAYMONGO_SANDBOX_WEBHOOK_SECRET,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

const NON_FINAL: [&str; 2] = ["PENDING", "PROCESSING"];

/// A child process killed (SIGKILL) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Sims {
    _proc: Proc,
    urls: BTreeMap<String, String>,
}

fn start_sims(bin: &Path, cpu: &str, log: &Path) -> Result<Sims, Error> {
    let mut child = Command::new("taskset")
        .args(["-c", cpu])
        .arg(bin)
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(File::create(log)?)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let proc = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut urls = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while urls.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .map_err(|_| "the simulators did not print their base URLs")?;
        if let Some((name, rest)) = line.split_once("base_url = ") {
            let url = rest.split_whitespace().next().ok_or("no URL")?.to_owned();
            urls.insert(name.trim().to_owned(), url);
        }
    }
    Ok(Sims { _proc: proc, urls })
}

struct Gateway {
    bin: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    cpu: String,
    starts: usize,
}

impl Gateway {
    fn log(&self) -> PathBuf {
        self.dir.join(format!("gateway-{}.log", self.starts))
    }

    /// Spawns it and waits until it logs `refund-gateway serving`.
    async fn start(&mut self) -> Result<Proc, Error> {
        self.starts += 1;
        let log = File::create(self.log())?;
        let child = Command::new("taskset")
            .args(["-c", &self.cpu])
            .arg(&self.bin)
            .args(["serve", "--config"])
            .arg(&self.config)
            .current_dir(&self.dir)
            .env_remove("RUST_LOG")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut proc = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(self.log()).unwrap_or_default();
            if text.contains("refund-gateway serving") {
                return Ok(proc);
            }
            if let Some(status) = proc.0.try_wait()? {
                return Err(format!("the gateway exited with {status}:\n{text}").into());
            }
            if Instant::now() > deadline {
                return Err(format!("the gateway is not serving:\n{text}").into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> Result<Value, Error> {
    let response = http.post(&url).json(&body).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(format!("POST {url}: {status} {text}").into());
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Refunds by status for provider account `paymongo`, from `/metrics`.
async fn by_status(http: &reqwest::Client, url: &str) -> Result<BTreeMap<String, u64>, Error> {
    let scrape = Scrape::fetch(http, url).await?;
    let mut out = BTreeMap::new();
    for status in [
        "PENDING",
        "PROCESSING",
        "SUCCEEDED",
        "FAILED",
        "CANCELED",
        "REQUIRES_REVIEW",
    ] {
        let n = scrape.sum(
            "refund_gateway_refunds",
            &[("provider", "paymongo"), ("status", status)],
        ) as u64;
        out.insert(status.to_owned(), n);
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    let bin = PathBuf::from(args.str("bin", "target/release/refund-gateway"));
    let dir = PathBuf::from(args.opt("dir").ok_or("--dir DIR is required")?);
    let count: usize = args.get("count", 10_000);
    let grpc_port: u16 = args.get("grpc-port", 50071);
    let http_port: u16 = args.get("http-port", 8095);
    let server_cpu = args.str("server-cpu", "0");
    let sim_cpu = args.str("sim-cpu", "1");
    let concurrency: usize = args.get("concurrency", 64);
    let timeout = Duration::from_secs(args.get("timeout", 300));
    let worker_toml = args.str("worker-toml", "");
    let label = args.str("label", "");
    let kill_after_checks: f64 = args.get("kill-after-checks", count / 4) as f64;
    std::fs::create_dir_all(&dir)?;
    let bin = std::fs::canonicalize(&bin)?;

    let sims = start_sims(&bin, &sim_cpu, &dir.join("sandbox.log"))?;
    let paymongo = sims.urls.get("paymongo").ok_or("no paymongo URL")?.clone();
    let http = reqwest::Client::new();
    post(
        &http,
        format!("{paymongo}/sandbox/settings"),
        json!({"settle_delay_ms": 600_000, "webhooks_enabled": false}),
    )
    .await?;

    // N payments of 100.00 PHP.
    let ids = Ids::new();
    let payment_ids: Vec<String> = (0..count)
        .map(|k| ids.request_id(k as u64).replace('-', ""))
        .map(|s| format!("pay_{s}"))
        .collect();
    let made: Vec<Result<Value, Error>> = stream::iter(payment_ids.clone())
        .map(|id| {
            let http = http.clone();
            let url = format!("{paymongo}/sandbox/payments");
            async move { post(&http, url, json!({"id": id, "amount": 10_000})).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    if let Some(Err(e)) = made.into_iter().find(Result::is_err) {
        return Err(format!("creating payments: {e}").into());
    }

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
{worker_toml}

# Far above what this run sends: it measures recovery, not the tenants' limits.
[limits]
requests_per_second = 1000000000
burst = 1000000000

[providers.compago]
kind = "compago"
base_url = "{compago}"
api_key = "{COMPAGO_SANDBOX_API_KEY}"

[providers.d24]
kind = "d24"
base_url = "{d24}"
login = "{D24_SANDBOX_LOGIN}"
secret_key = "{D24_SANDBOX_SECRET}"

[providers.paymongo]
kind = "paymongo"
base_url = "{paymongo}"
secret_key = "{PAYMONGO_SANDBOX_SECRET_KEY}"
webhook_secret = "{PAYMONGO_SANDBOX_WEBHOOK_SECRET}"
"#,
            db = db.display(),
            compago = sims.urls["compago"],
            d24 = sims.urls["d24"],
        ),
    )?;
    let mut gateway = Gateway {
        bin,
        dir: dir.clone(),
        config,
        cpu: server_cpu,
        starts: 0,
    };
    let addr = format!("http://127.0.0.1:{grpc_port}");
    let metrics = format!("http://127.0.0.1:{http_port}/metrics");

    // N refunds, each left PROCESSING by the simulator.
    let first = gateway.start().await?;
    let chans = Arc::new(connect(&addr, 4).await?);
    let t_create = Instant::now();
    let created: Vec<Result<i32, Error>> = stream::iter(payment_ids.iter().cloned().enumerate())
        .map(|(k, payment_id)| {
            let chans = chans.clone();
            let ids = ids.clone();
            async move {
                let mut client = RefundServiceClient::new(chans[k % chans.len()].clone());
                let refund = client
                    .create_refund(pb::CreateRefundRequest {
                        request_id: ids.request_id(k as u64),
                        provider: "paymongo".to_owned(),
                        payment: Some(pb::PaymentReference {
                            payment_id,
                            ..Default::default()
                        }),
                        reason: pb::RefundReason::RequestedByCustomer as i32,
                        ..Default::default()
                    })
                    .await
                    .map_err(|s| format!("CreateRefund: {s}"))?
                    .into_inner()
                    .refund
                    .ok_or("no refund")?;
                Ok(refund.status)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let create_s = t_create.elapsed().as_secs_f64();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for r in created {
        let status = r?;
        let name = pb::RefundStatus::try_from(status)
            .map_or_else(|_| status.to_string(), |s| s.as_str_name().to_owned());
        *statuses.entry(name).or_default() += 1;
    }
    // Let the worker start on them, so some are claimed when the gateway dies.
    let t_wait = Instant::now();
    let checks_at_kill = loop {
        let checks = Scrape::fetch(&http, &metrics)
            .await?
            .sum("refund_gateway_worker_checks_total", &[]);
        if checks >= kill_after_checks || t_wait.elapsed() > Duration::from_secs(120) {
            break checks;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let before_kill = by_status(&http, &metrics).await?;
    let non_final_at_kill: u64 = NON_FINAL.iter().map(|s| before_kill[*s]).sum();
    drop(chans);
    drop(first); // SIGKILL
    let killed_at = Instant::now();

    // Settle every pending refund at the simulator.
    let listed: Value = http
        .get(format!("{paymongo}/sandbox/refunds"))
        .send()
        .await?
        .json()
        .await?;
    let pending: Vec<String> = listed["data"]
        .as_array()
        .ok_or("no refund list")?
        .iter()
        .filter(|r| r["attributes"]["status"] == "pending")
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    let t_settle = Instant::now();
    let settled: Vec<Result<Value, Error>> = stream::iter(pending.clone())
        .map(|id| {
            let http = http.clone();
            let url = format!("{paymongo}/sandbox/refunds/{id}/settle");
            async move { post(&http, url, json!({"outcome": "succeeded"})).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let settle_errors = settled.iter().filter(|r| r.is_err()).count();
    let settle_s = t_settle.elapsed().as_secs_f64();

    // When the dead gateway's store says each non-final refund is next due.
    let due = due_in(&db).await?;

    // Restart, and wait until nothing is PENDING or PROCESSING.
    let t_restart = Instant::now();
    let _second = gateway.start().await?;
    let serving_s = t_restart.elapsed().as_secs_f64();
    let mut marks: BTreeMap<&str, f64> = BTreeMap::new();
    let mut last;
    loop {
        last = by_status(&http, &metrics).await?;
        let left: u64 = NON_FINAL.iter().map(|s| last[*s]).sum();
        let done = non_final_at_kill.saturating_sub(left) as f64 / non_final_at_kill.max(1) as f64;
        let t = t_restart.elapsed().as_secs_f64();
        for (name, at) in [
            ("first_final_s", 0.0),
            ("half_final_s", 0.5),
            ("p90_final_s", 0.9),
        ] {
            if done > at && !marks.contains_key(name) {
                marks.insert(name, t);
            }
        }
        if left == 0 || t_restart.elapsed() > timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left: u64 = NON_FINAL.iter().map(|s| last[*s]).sum();
    let all_final_s = t_restart.elapsed().as_secs_f64();
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    emit(&json!({
        "tool": "gw-restart",
        "label": label,
        "count": count,
        "create_s": r2(create_s),
        "create_rps": (count as f64 / create_s).round(),
        "statuses_at_create": statuses,
        "non_final_at_kill": non_final_at_kill,
        "checks_at_kill": checks_at_kill,
        "settled_at_simulator": pending.len() - settle_errors,
        "settle_s": r2(settle_s),
        "down_s": r2(t_restart.duration_since(killed_at).as_secs_f64()),
        "due_at_restart": due,
        "restart_to_serving_s": r2(serving_s),
        "first_final_s": marks.get("first_final_s").copied().map(r2),
        "half_final_s": marks.get("half_final_s").copied().map(r2),
        "p90_final_s": marks.get("p90_final_s").copied().map(r2),
        "all_final_s": if left == 0 { json!(r2(all_final_s)) } else { Value::Null },
        "timed_out": left > 0,
        "left_non_final": left,
        "final_statuses": last,
    }));
    Ok(())
}

/// From the dead gateway's store: how many refunds are not final, and in how many seconds
/// from now their next checks are due (min, median, p90, max; negative: overdue).
async fn due_in(db: &Path) -> Result<Value, Error> {
    use sqlx::{Connection as _, sqlite::SqliteConnectOptions};
    let mut conn =
        sqlx::SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(db)).await?;
    let mut due: Vec<Option<i64>> = sqlx::query_scalar(
        "SELECT next_check_at FROM refunds WHERE status IN ('PENDING', 'PROCESSING') \
         ORDER BY next_check_at",
    )
    .fetch_all(&mut conn)
    .await?;
    // Claimed by the dead worker (a lease, not a schedule); 0 before the column existed.
    let leased: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM refunds WHERE leased = 1 AND status IN ('PENDING', 'PROCESSING')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap_or(0);
    conn.close().await?;
    let now = refund_gateway_bench::unix_nanos() / 1000;
    let unscheduled = due.iter().filter(|d| d.is_none()).count();
    due.retain(Option::is_some);
    let secs: Vec<f64> = due
        .iter()
        .map(|d| ((d.unwrap_or(0) - now) as f64 / 1e4).round() / 100.0)
        .collect();
    let at = |p: f64| {
        if secs.is_empty() {
            Value::Null
        } else {
            json!(secs[((p * secs.len() as f64).ceil() as usize).clamp(1, secs.len()) - 1])
        }
    };
    Ok(json!({
        "non_final": secs.len() + unscheduled,
        "unscheduled": unscheduled,
        "leased": leased,
        "min_s": at(0.0),
        "p50_s": at(0.5),
        "p90_s": at(0.9),
        "max_s": at(1.0),
    }))
}
