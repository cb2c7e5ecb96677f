//! Tests of the real `refund-gateway` binary as an operator runs it: bad configuration,
//! secrets kept out of the logs, graceful shutdown on SIGTERM, the sandbox command.

mod support;

use std::{process::Command, time::Duration};

use refund_gateway::pb::{self, refund_service_client::RefundServiceClient};
use support::process::{BIN, Proc, field, printed_base_url, sandbox_config};
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

fn serve(config: &std::path::Path, envs: &[(&str, &str)]) -> (Proc, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config"]).arg(config);
    cmd.env("RUST_LOG", "trace");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let proc = Proc::start(cmd);
    let line = proc.wait_for_line("refund-gateway serving");
    let grpc = format!("http://{}", field(&line, "grpc"));
    let http = format!("http://{}", field(&line, "http"));
    (proc, grpc, http)
}

/// Makes the Compago simulator at `sandbox` answer each refund `ms` late.
async fn compago_refund_delay(sandbox: &str, ms: u64) {
    reqwest::Client::new()
        .post(format!("http://{sandbox}/compago/sandbox/faults"))
        .json(&serde_json::json!({ "refund_delay_ms": ms }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
}

/// The gateway's `/metrics` text.
async fn scrape(http: &str) -> String {
    reqwest::get(format!("{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A refund of the Compago fixture payment that is CONFIRMED.
fn confirmed_fixture_refund(request_id: &str) -> pb::CreateRefundRequest {
    pb::CreateRefundRequest {
        request_id: request_id.into(),
        provider: "compago".into(),
        payment: Some(pb::PaymentReference {
            payment_id: "33333333-3333-3333-3333-333333333333".into(),
            payment_method_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            invoice_id: String::new(),
        }),
        ..Default::default()
    }
}

/// A bad config file, or a missing one, stops the binary with one clear line and a
/// non-zero exit.
#[test]
fn bad_config_is_one_line_and_a_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[store]\nurl = \"mysql://db\"\n", "store.url"),
        (
            "[providers.x]\nkind = \"compago\"\nbase_url = \"http://h\"\n",
            "providers.x.api_key",
        ),
        ("[server]\ngrpc_listen = 12\n", "grpc_listen"),
        ("this is not toml", "TOML"),
    ];
    for (text, needle) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
        assert!(
            stderr.contains(needle),
            "{stderr:?} should mention {needle}"
        );
    }
    let out = Command::new(BIN)
        .args(["serve", "--config", "/nonexistent/refund-gateway.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("does not exist")
    );
    // A port already taken is also one line and a non-zero exit.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let path = dir.path().join("taken.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\ngrpc_listen = \"{}\"\nhttp_listen = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://{}/gw.db\"\n",
            taken.local_addr().unwrap(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stderr.trim_end().lines().last().unwrap();
    assert!(last.contains("cannot listen on grpc_listen"), "{stderr}");
}

/// `--help` works on every command.
#[test]
fn help_works_everywhere() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["sandbox", "--help"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8(out.stdout).unwrap().contains("Usage"));
    }
}

/// API keys and provider secrets never reach the logs, even at debug level, through a run
/// that authenticates, refunds, fails to authenticate and shuts down, logging at trace level. The provider key comes
/// from an environment override, which also proves overrides work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs() {
    let sandbox = Proc::start({
        let mut cmd = Command::new(BIN);
        cmd.args(["sandbox", "--listen", "127.0.0.1:0"]);
        cmd
    });
    let compago_url = printed_base_url(&sandbox, "compago");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    let tenant_key = "tenant-key-7f3a9c1e5b";
    let other_tenant_key = "tenant-key-2b8d4e6f0a";
    std::fs::write(
        &config,
        format!(
            r#"
[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
[store]
url = "sqlite://{db}"
[[tenants]]
id = "acme"
api_keys = ["{tenant_key}", "{other_tenant_key}"]
[providers.compago]
kind = "compago"
base_url = "{compago_url}"
api_key = "wrong-key-overridden-by-env"
"#,
            db = dir.path().join("gw.db").display()
        ),
    )
    .unwrap();
    let provider_key = simulators::compago::COMPAGO_SANDBOX_API_KEY;
    let (mut gw, grpc, _http) = serve(
        &config,
        &[("REFUND_GATEWAY__PROVIDERS__COMPAGO__API_KEY", provider_key)],
    );
    let channel = Channel::from_shared(grpc).unwrap().connect().await.unwrap();
    let mut client = RefundServiceClient::new(channel);
    let mut req = Request::new(pb::CreateRefundRequest {
        request_id: "secret-test-1".into(),
        provider: "compago".into(),
        payment: Some(pb::PaymentReference {
            payment_id: "22222222-2222-2222-2222-222222222222".into(),
            payment_method_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            invoice_id: String::new(),
        }),
        ..Default::default()
    });
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {tenant_key}").parse().unwrap(),
    );
    let refund = client
        .create_refund(req)
        .await
        .expect("refund with the env key")
        .into_inner();
    assert_eq!(
        refund.refund.unwrap().status,
        i32::from(pb::RefundStatus::Succeeded)
    );
    let mut bad = Request::new(pb::ListRefundsRequest::default());
    bad.metadata_mut().insert(
        "authorization",
        "Bearer tenant-key-guessed-000".parse().unwrap(),
    );
    assert_eq!(
        client.list_refunds(bad).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    gw.signal("TERM");
    assert!(gw.wait_exit(Duration::from_secs(15)).success());
    let logs = gw.all_output();
    assert!(
        logs.contains("refund recorded"),
        "debug logs were captured:\n{logs}"
    );
    for secret in [
        tenant_key,
        other_tenant_key,
        provider_key,
        "wrong-key-overridden-by-env",
    ] {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
    }
}

/// SIGTERM: health turns NOT_SERVING, a call in flight finishes, watch streams end with OK,
/// new calls are refused, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let config = sandbox_config(dir.path(), "shutdown_grace_ms = 10000", "");
    let (mut gw, grpc, _http) = serve(&config, &[]);
    let sandbox = field(&gw.wait_for_line("provider simulators started"), "addr");
    // Refund answers take a second, so a CreateRefund is in flight when SIGTERM arrives.
    compago_refund_delay(&sandbox, 1000).await;

    let channel = Channel::from_shared(grpc).unwrap().connect().await.unwrap();
    let mut client = RefundServiceClient::new(channel.clone());
    let mut health = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: "refunds.v1.RefundService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.message().await.unwrap().unwrap().status,
        i32::from(ServingStatus::Serving)
    );
    let mut feed = client
        .watch_refunds(pb::WatchRefundsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let in_flight = {
        let mut client = client.clone();
        tokio::spawn(async move {
            client
                .create_refund(confirmed_fixture_refund("in-flight"))
                .await
        })
    };
    // The refund is recorded (first event) before the provider answers.
    let first = feed.message().await.unwrap().unwrap().event.unwrap();
    assert_eq!(first.refund.as_ref().unwrap().request_id, "in-flight");

    gw.signal("TERM");
    assert_eq!(
        health.message().await.unwrap().unwrap().status,
        i32::from(ServingStatus::NotServing)
    );
    drop(health);
    let refused = client.list_refunds(pb::ListRefundsRequest::default()).await;
    assert_eq!(refused.unwrap_err().code(), Code::Unavailable);

    let finished = in_flight
        .await
        .unwrap()
        .expect("the call in flight finishes");
    assert_eq!(
        finished.into_inner().refund.unwrap().status,
        i32::from(pb::RefundStatus::Succeeded)
    );
    // The feed may deliver the SUCCEEDED change before it ends; it ends with OK.
    loop {
        match feed.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(status) => panic!("the stream ended with an error: {status:?}"),
        }
    }
    let status = gw.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit {status:?}:\n{}", gw.all_output());
}

/// `refund-gateway sandbox` prints each simulated provider's base URL, and the Compago one
/// answers with the printed key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_command_serves_the_simulators() {
    let sandbox = Proc::start({
        let mut cmd = Command::new(BIN);
        cmd.args(["sandbox", "--listen", "127.0.0.1:0"]);
        cmd
    });
    let base = printed_base_url(&sandbox, "compago");
    sandbox.wait_for_line("d24       base_url");
    sandbox.wait_for_line("paymongo  base_url");
    let res = reqwest::Client::new()
        .get(format!(
            "{base}/api/payment-method/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/payment/11111111-2222-3333-4444-555555555555"
        ))
        .header("x-api-key", simulators::compago::COMPAGO_SANDBOX_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "CONFIRMED");
}

/// A SQLite store serves one process: a second gateway on the same file stops with one
/// line that says so, and the first one carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_on_one_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = sandbox_config(dir.path(), "", "");
    let (_first, grpc, _http) = serve(&config, &[]);
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stderr.trim_end().lines().last().unwrap();
    assert!(
        last.contains("in use by another refund-gateway process"),
        "{stderr}"
    );
    let mut client = RefundServiceClient::connect(grpc).await.unwrap();
    client
        .list_refunds(pb::ListRefundsRequest::default())
        .await
        .expect("the first gateway still serves");
}

/// `create_refund_own_seconds` is each CreateRefund's time without its provider calls: with
/// the provider answering after 300 ms, the call takes longer than that and its own time is
/// what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refund_own_time_leaves_out_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let config = sandbox_config(dir.path(), "", "");
    let (gw, grpc, http) = serve(&config, &[]);
    let sandbox = field(&gw.wait_for_line("provider simulators started"), "addr");
    compago_refund_delay(&sandbox, 300).await;
    let mut client = RefundServiceClient::connect(grpc).await.unwrap();
    let refund = client
        .create_refund(confirmed_fixture_refund("own-time"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    assert_eq!(refund.status, i32::from(pb::RefundStatus::Succeeded));

    let metrics = scrape(&http).await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
    };
    let total = value(r#"refund_gateway_grpc_request_duration_seconds_sum{method="CreateRefund"}"#);
    let provider = value(
        r#"refund_gateway_provider_request_duration_seconds_sum{provider="compago",operation="get_payment"}"#,
    ) + value(
        r#"refund_gateway_provider_request_duration_seconds_sum{provider="compago",operation="submit_refund"}"#,
    );
    assert_eq!(value("refund_gateway_create_refund_own_seconds_count"), 1.0);
    let own = value("refund_gateway_create_refund_own_seconds_sum");
    assert!(provider >= 0.3, "provider {provider}");
    assert!(own >= 0.0 && own < total - 0.29, "own {own}, total {total}");
    assert!(
        (own - (total - provider)).abs() < 0.005,
        "own {own} should be total {total} minus provider {provider}"
    );
}

/// Every call is counted once, under its own method and code, and every provider call under
/// its own operation and outcome: the metric handles the gateway keeps between calls point at
/// the right series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_is_counted_once_under_its_own_labels() {
    let dir = tempfile::tempdir().unwrap();
    let config = sandbox_config(dir.path(), "", "");
    let (_gw, grpc, http) = serve(&config, &[]);
    let mut client = RefundServiceClient::connect(grpc).await.unwrap();
    let refund = client
        .create_refund(confirmed_fixture_refund("counted"))
        .await
        .unwrap()
        .into_inner()
        .refund
        .unwrap();
    // The same request again: answered from the stored refund, no provider call.
    client
        .create_refund(confirmed_fixture_refund("counted"))
        .await
        .unwrap();
    for _ in 0..2 {
        let request = pb::GetRefundRequest {
            id: refund.id.clone(),
        };
        client.get_refund(request).await.unwrap();
    }
    let unknown = pb::GetRefundRequest {
        id: format!("rf_{}", "0".repeat(32)),
    };
    let code = client.get_refund(unknown).await.unwrap_err().code();
    assert_eq!(code, Code::NotFound);
    let malformed = pb::GetRefundRequest { id: String::new() };
    let code = client.get_refund(malformed).await.unwrap_err().code();
    assert_eq!(code, Code::InvalidArgument);

    let text = scrape(&http).await;
    let calls = |method: &str, code: &str| {
        support::messages::metric(
            &text,
            "refund_gateway_grpc_requests_total",
            &[("method", method), ("code", code)],
        )
    };
    assert_eq!(calls("CreateRefund", "OK"), 2.0, "{text}");
    assert_eq!(calls("GetRefund", "OK"), 2.0, "{text}");
    assert_eq!(calls("GetRefund", "NOT_FOUND"), 1.0, "{text}");
    assert_eq!(calls("GetRefund", "INVALID_ARGUMENT"), 1.0, "{text}");
    let timed = |method: &str| {
        support::messages::metric(
            &text,
            "refund_gateway_grpc_request_duration_seconds_count",
            &[("method", method)],
        )
    };
    assert_eq!(timed("GetRefund"), 4.0, "{text}");
    assert_eq!(timed("CreateRefund"), 2.0, "{text}");
    let provider = |operation: &str, outcome: &str| {
        support::messages::metric(
            &text,
            "refund_gateway_provider_requests_total",
            &[
                ("provider", "compago"),
                ("operation", operation),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(provider("submit_refund", "accepted"), 1.0, "{text}");
    assert_eq!(provider("get_payment", "ok"), 1.0, "{text}");
    let provider_timed = support::messages::metric(
        &text,
        "refund_gateway_provider_request_duration_seconds_count",
        &[("provider", "compago"), ("operation", "submit_refund")],
    );
    assert_eq!(provider_timed, 1.0, "{text}");
}
