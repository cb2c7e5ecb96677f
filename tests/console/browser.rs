//! A real headless Chromium, driven over WebDriver through the system's `chromedriver`
//! (Debian's `chromium` and `chromium-driver`; `.ci/run` installs them). Nothing is
//! downloaded: a machine without them fails here with a message that says what to install.
//!
//! Each [`Browser`] runs its own chromedriver (ended, with the browser it started, when the
//! `Browser` is dropped, also after a failed assertion) and a fresh profile directory, with
//! the browser's console log kept so a test can assert the page logged no error.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// The laptop screen the console is designed for (and the README's screenshot size).
pub const WIDTH: u32 = 1366;
pub const HEIGHT: u32 = 768;

pub struct Browser {
    pub client: Client,
    driver: Child,
    port: u16,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

/// `name` on the PATH (or at the path in env `var`), or a failure that says what to install.
fn tool(var: &str, names: &[&str]) -> PathBuf {
    if let Ok(path) = std::env::var(var) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{var}={} is not a file: install Debian's chromium and chromium-driver \
             (`apt-get install -y chromium chromium-driver`; .ci/run does)",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "the console's browser test needs {} (or {var} set to it): install Debian's chromium \
         and chromium-driver (`apt-get install -y chromium chromium-driver`; .ci/run does)",
        names.join(" or ")
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Browser {
    pub async fn start() -> Self {
        let chromedriver = tool("CHROMEDRIVER", &["chromedriver"]);
        let chromium = tool("CHROMIUM", &["chromium", "chromium-browser"]);
        let profile = tempfile::tempdir().expect("profile dir");
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", chromedriver.display()));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-default-apps",
                    "--disable-sync",
                    "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    format!("--window-size={WIDTH},{HEIGHT}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .unwrap_or_else(|err| {
                panic!("chromedriver could not start {}: {err}", chromium.display())
            });
        // The viewport (not the window with its frame) at the laptop size.
        let frame = client
            .execute(
                "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]",
                vec![],
            )
            .await
            .expect("window size");
        let extra = |i: usize| u32::try_from(frame[i].as_u64().unwrap_or(0)).unwrap_or(0);
        client
            .set_window_size(WIDTH + extra(0), HEIGHT + extra(1))
            .await
            .expect("window size");
        let session = client.session_id().await.ok().flatten();
        Self {
            client,
            driver,
            port,
            session,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// The page's console messages at level SEVERE since the last call (errors, refused
    /// scripts, failed loads, Content-Security-Policy violations).
    pub async fn severe_logs(&self) -> Vec<String> {
        let logs = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("chromedriver returns the browser log");
        logs.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Evaluates `script` (a function body; `arguments` are `args`) in the page.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// Waits (at most `within`) until `script` returns a truthy value, and returns it;
    /// fails with `what` and the page's text otherwise.
    pub async fn wait_until(
        &self,
        what: &str,
        within: Duration,
        script: &str,
        args: Vec<Value>,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let value = self.eval(script, args.clone()).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let text = self.eval("return document.body.innerText", vec![]).await;
                panic!(
                    "the console never showed {what} within {within:?}; the page said:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no element {css}: {err}"))
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// Replaces what `css` (an input) holds with `text`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    /// A PNG of the viewport, written to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Ends the session (the browser quits); chromedriver ends when `self` drops.
    pub async fn close(mut self) {
        if self.client.clone().close().await.is_ok() {
            self.session = None;
        }
    }
}

impl Drop for Browser {
    /// Ends the browser and chromedriver, also when a test failed half-way: the session is
    /// deleted (chromedriver then quits the browser it started), then chromedriver itself,
    /// by its own process handle.
    fn drop(&mut self) {
        if let Some(session) = &self.session {
            delete_session(self.port, session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/{id}` to chromedriver, blocking (a `Drop` cannot wait for async work),
/// given two seconds at most.
fn delete_session(port: u16, session: &str) {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

/// chromedriver's browser log (`goog:loggingPrefs`): the entries since the last read.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}
