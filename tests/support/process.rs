//! The real `refund-gateway` binary as a process, for the binary-level tests: processes
//! with captured output, the lines they print, the simulators as a process of their own
//! (`refund-gateway sandbox`) and configs pointing at them.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_refund-gateway");

/// A config for one binary on its own: one sandbox Compago account (the simulators in the
/// process), a SQLite file in `dir`, every port chosen by the system. `server_extra` goes
/// into `[server]` (its keys, then any sub-table such as `[server.tls]`), `rest` after
/// everything (tenants, limits, ...).
pub fn sandbox_config(dir: &Path, server_extra: &str, rest: &str) -> PathBuf {
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
{server_extra}
[store]
url = "sqlite://{db}"
busy_timeout_ms = 500
[sandbox]
listen = "127.0.0.1:0"
[providers.compago]
kind = "compago"
sandbox = true
{rest}
"#,
            db = dir.join("gw.db").display()
        ),
    )
    .unwrap();
    path
}

/// A child process whose stdout and stderr are collected line by line.
pub struct Proc {
    pub child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn start(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line);
                }
            });
        }
        Proc { child, output }
    }

    /// Waits (up to 20 s) for a line containing `needle` and returns it.
    pub fn wait_for_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self
                .output
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} in:\n{}",
                self.all_output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn all_output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "did not exit:\n{}",
                self.all_output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `key=value` out of a log line.
pub fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        .trim_matches('"')
        .to_owned()
}

/// The simulators run as their own process (`refund-gateway sandbox`), so they outlive the
/// gateways under test.
pub struct Sandbox {
    pub proc: Proc,
    pub compago: String,
    pub d24: String,
    pub paymongo: String,
}

impl Sandbox {
    pub fn start() -> Sandbox {
        let mut cmd = Command::new(BIN);
        cmd.args(["sandbox", "--listen", "127.0.0.1:0"]);
        let proc = Proc::start(cmd);
        let compago = printed_base_url(&proc, "compago");
        let d24 = printed_base_url(&proc, "d24");
        let paymongo = printed_base_url(&proc, "paymongo");
        Sandbox {
            proc,
            compago,
            d24,
            paymongo,
        }
    }

    /// Provider account tables pointing at this sandbox as if it were the real providers.
    pub fn provider_config(&self, timeout_ms: u64) -> String {
        accounts_on(&self.compago, &self.d24, &self.paymongo, timeout_ms)
    }
}

/// Accounts `compago`, `d24` and `paymongo` on simulators at these base URLs, with the
/// simulators' credentials, as if they were the real providers.
pub fn accounts_on(compago: &str, d24: &str, paymongo: &str, timeout_ms: u64) -> String {
    [("compago", compago), ("d24", d24), ("paymongo", paymongo)]
        .into_iter()
        .map(|(kind, base_url)| {
            format!(
                "\n[providers.{kind}]\nkind = \"{kind}\"\nbase_url = \"{base_url}\"\n{}\ntimeout_ms = {timeout_ms}\n",
                super::sims::credentials(kind)
            )
        })
        .collect()
}

/// The base URL `refund-gateway sandbox` prints for a provider (`NAME   base_url = URL`).
pub fn printed_base_url(sandbox: &Proc, provider: &str) -> String {
    let line = sandbox.wait_for_line(&format!("{provider:<10}base_url"));
    line.split("= ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no base URL in {line:?}"))
        .to_owned()
}

/// A gateway process started from a config file; its addresses come from its log.
pub struct Gateway {
    pub proc: Proc,
    pub grpc: String,
    pub http: String,
}

impl Gateway {
    pub fn start(config: &Path, envs: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config"]).arg(config);
        cmd.env("RUST_LOG", "info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let proc = Proc::start(cmd);
        let line = proc.wait_for_line("refund-gateway serving");
        Gateway {
            grpc: format!("http://{}", field(&line, "grpc")),
            http: format!("http://{}", field(&line, "http")),
            proc,
        }
    }
}
