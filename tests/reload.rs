//! The real binary as an operator runs it: tenants reloaded on SIGHUP (keys added and
//! removed, open streams of a removed key ended, a bad file refused), each tenant's limits
//! (calls per second, watch streams), and `refund-gateway check-config`.

mod support;

use std::{process::Command, time::Duration};

use refund_gateway::pb::{self, refund_service_client::RefundServiceClient};
use support::process::{BIN, Gateway, sandbox_config};
use tonic::{Code, Request, Status, Streaming, transport::Channel};
use tonic_types::StatusExt as _;

async fn client(grpc: &str) -> RefundServiceClient<Channel> {
    let channel = Channel::from_shared(grpc.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    RefundServiceClient::new(channel)
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// A cheap call (no store, no provider) made with `key`.
async fn call(client: &mut RefundServiceClient<Channel>, key: &str) -> Result<(), Status> {
    client
        .list_providers(with_key(pb::ListProvidersRequest {}, key))
        .await
        .map(|_| ())
}

/// A live WatchRefunds stream opened with `key` (its headers are in: the gateway accepted it).
async fn watch(
    client: &mut RefundServiceClient<Channel>,
    key: &str,
) -> Result<Streaming<pb::WatchRefundsResponse>, Status> {
    client
        .watch_refunds(with_key(pb::WatchRefundsRequest::default(), key))
        .await
        .map(tonic::Response::into_inner)
}

#[track_caller]
fn assert_reason(status: &Status, code: Code, reason: &str) -> tonic_types::ErrorDetails {
    assert_eq!(status.code(), code, "{status:?}");
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "refunds.v1");
    details
}

fn count_lines(gw: &Gateway, needle: &str) -> usize {
    gw.proc
        .all_output()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// SIGHUP applies the file's tenants without a restart: a new key works at once, a removed
/// key is refused and the WatchRefunds stream opened with it ends with UNAUTHENTICATED while
/// another key's stream stays open; a key that needs a restart is named; a file that does not
/// validate is refused with one log line and the keys in force keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_keys_and_ends_the_streams_of_removed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = |acme_keys: &str, extra: &str| {
        format!(
            "[worker]\ntick_ms = 500{extra}\n\
             [[tenants]]\nid = \"acme\"\napi_keys = [{acme_keys}]\n\
             [[tenants]]\nid = \"globex\"\napi_keys = [\"globex-key-1\"]\n"
        )
    };
    let config = sandbox_config(
        dir.path(),
        "",
        &tenants("\"acme-key-stays\", \"acme-key-goes\"", ""),
    );
    let gw = Gateway::start(&config, &[]);
    let mut client = client(&gw.grpc).await;
    call(&mut client, "acme-key-goes").await.unwrap();
    let unknown = call(&mut client, "acme-key-new").await.unwrap_err();
    assert_reason(&unknown, Code::Unauthenticated, "UNAUTHENTICATED");
    let mut doomed = watch(&mut client, "acme-key-goes").await.unwrap();
    let mut kept = watch(&mut client, "acme-key-stays").await.unwrap();

    // Rotate acme's key; the worker's tick changes too, which needs a restart.
    sandbox_config(
        dir.path(),
        "",
        &tenants("\"acme-key-stays\", \"acme-key-new\"", "0"),
    );
    gw.proc.signal("HUP");
    let reloaded = gw.proc.wait_for_line("config reloaded");
    assert!(
        reloaded.contains("tenants=2") && reloaded.contains("api_keys=3"),
        "{reloaded}"
    );
    let restart = gw.proc.wait_for_line("need a restart");
    assert!(restart.contains("worker.tick_ms"), "{restart}");

    call(&mut client, "acme-key-new").await.unwrap();
    call(&mut client, "acme-key-stays").await.unwrap();
    let removed = call(&mut client, "acme-key-goes").await.unwrap_err();
    assert_reason(&removed, Code::Unauthenticated, "UNAUTHENTICATED");
    let ended = tokio::time::timeout(Duration::from_secs(5), doomed.message())
        .await
        .expect("the removed key's stream ends within seconds")
        .unwrap_err();
    assert_reason(&ended, Code::Unauthenticated, "UNAUTHENTICATED");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), kept.message())
            .await
            .is_err(),
        "the stream of a key that stays is still open"
    );

    // A file with problems changes nothing, and says so on one line.
    sandbox_config(
        dir.path(),
        "",
        "[[tenants]]\nid = \"acme\"\napi_keys = [\"only-key\"]\n\
         [[tenants]]\nid = \"globex\"\napi_keys = [\"only-key\"]\n[limits]\nburst = 0\n",
    );
    gw.proc.signal("HUP");
    let refused = gw.proc.wait_for_line("config reload refused");
    assert!(
        refused.contains("tenants[1].api_keys[0]") && refused.contains("limits.burst"),
        "{refused}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count_lines(&gw, "config reload refused"), 1);
    assert_eq!(count_lines(&gw, "config reloaded"), 1);
    call(&mut client, "acme-key-new").await.unwrap();
    call(&mut client, "globex-key-1").await.unwrap();
    let refused = call(&mut client, "only-key").await.unwrap_err();
    assert_reason(&refused, Code::Unauthenticated, "UNAUTHENTICATED");
    for key in [
        "acme-key-stays",
        "acme-key-goes",
        "acme-key-new",
        "only-key",
    ] {
        assert!(
            !gw.proc.all_output().contains(key),
            "{key} reached the logs"
        );
    }
}

/// A tenant over its calls per second gets RESOURCE_EXHAUSTED with ErrorInfo and RetryInfo,
/// counted in the metrics, while another tenant calling during the burst is served in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_rate_is_refused_while_another_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = sandbox_config(
        dir.path(),
        "",
        "[limits]\nrequests_per_second = 1000\nburst = 1000\n\
         [[tenants]]\nid = \"noisy\"\napi_keys = [\"noisy-key\"]\nrequests_per_second = 1\nburst = 5\n\
         [[tenants]]\nid = \"calm\"\napi_keys = [\"calm-key\"]\n",
    );
    let gw = Gateway::start(&config, &[]);
    let noisy_client = client(&gw.grpc).await;
    let calm_client = client(&gw.grpc).await;
    let started = std::time::Instant::now();
    let burst = |key: &'static str, client: RefundServiceClient<Channel>, calls: usize| {
        tokio::spawn(async move {
            let calls = (0..calls).map(|_| {
                let mut client = client.clone();
                async move { call(&mut client, key).await }
            });
            futures::future::join_all(calls).await
        })
    };
    let noisy = burst("noisy-key", noisy_client, 40);
    let calm = burst("calm-key", calm_client, 40);
    let (noisy, calm) = (noisy.await.unwrap(), calm.await.unwrap());
    let elapsed = started.elapsed();

    assert!(calm.iter().all(Result::is_ok), "calm: {calm:?}");
    let served = noisy.iter().filter(|r| r.is_ok()).count();
    // The burst of 5, and one more per second that passed.
    let most = 5 + usize::try_from(elapsed.as_secs()).unwrap() + 1;
    assert!(
        (5..=most).contains(&served),
        "{served} of noisy's calls served in {elapsed:?}"
    );
    let refused: Vec<&Status> = noisy.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(refused.len(), 40 - served);
    for status in &refused {
        let details = assert_reason(status, Code::ResourceExhausted, "RATE_LIMITED");
        assert_eq!(details.error_info().unwrap().metadata["tenant"], "noisy");
        let delay = details
            .retry_info()
            .and_then(|r| r.retry_delay)
            .expect("RetryInfo with a delay");
        assert!(
            delay > Duration::ZERO && delay <= Duration::from_secs(1),
            "{delay:?}"
        );
    }
    let metrics = reqwest::get(format!("{}/metrics", gw.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = support::messages::metric(
        &metrics,
        "refund_gateway_rate_limited_total",
        &[("tenant", "noisy"), ("limit", "requests")],
    );
    assert_eq!(counted, refused.len() as f64);
    let calm_counted = support::messages::metric(
        &metrics,
        "refund_gateway_rate_limited_total",
        &[("tenant", "calm")],
    );
    assert_eq!(calm_counted, 0.0);
}

/// A tenant at its limit of open watch streams gets RESOURCE_EXHAUSTED for one more; closing
/// one frees its place; a reload raising the limit lets one more open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_stream_limit_opens_again_after_closing_one() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = |streams: u32| {
        format!(
            "[[tenants]]\nid = \"acme\"\napi_keys = [\"acme-key\"]\nwatch_streams = {streams}\n\
             [[tenants]]\nid = \"globex\"\napi_keys = [\"globex-key\"]\n"
        )
    };
    let config = sandbox_config(dir.path(), "", &tenants(2));
    let gw = Gateway::start(&config, &[]);
    let mut client = client(&gw.grpc).await;
    let first = watch(&mut client, "acme-key").await.unwrap();
    let _second = watch(&mut client, "acme-key").await.unwrap();
    let over = watch(&mut client, "acme-key").await.unwrap_err();
    let details = assert_reason(&over, Code::ResourceExhausted, "TOO_MANY_STREAMS");
    assert_eq!(details.error_info().unwrap().metadata["tenant"], "acme");
    assert!(details.retry_info().is_some());
    // Another tenant's streams are its own.
    let _globex = watch(&mut client, "globex-key").await.unwrap();

    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let _third = loop {
        match watch(&mut client, "acme-key").await {
            Ok(stream) => break stream,
            Err(status) if std::time::Instant::now() < deadline => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("the closed stream's place was not given back: {status:?}"),
        }
    };
    let over = watch(&mut client, "acme-key").await.unwrap_err();
    assert_reason(&over, Code::ResourceExhausted, "TOO_MANY_STREAMS");

    sandbox_config(dir.path(), "", &tenants(3));
    gw.proc.signal("HUP");
    gw.proc.wait_for_line("config reloaded");
    let _fourth = watch(&mut client, "acme-key").await.unwrap();
    let over = watch(&mut client, "acme-key").await.unwrap_err();
    assert_reason(&over, Code::ResourceExhausted, "TOO_MANY_STREAMS");
}

fn check_config(path: &std::path::Path, envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["check-config", "--config"]).arg(path);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
    (out.status.code(), text)
}

/// check-config: a good file is OK with a summary, even with its ports taken (it opens none);
/// a file with several problems gets one line per problem, each naming its key, and exit 2,
/// as `serve` does; a problem an environment override fixes is not one.
#[test]
fn check_config_reports_every_problem_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let grpc_taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "[server]\ngrpc_listen = \"{}\"\nhttp_listen = \"{}\"\n\
             [store]\nurl = \"sqlite://{}/gw.db\"\n\
             [[tenants]]\nid = \"acme\"\napi_keys = [\"acme-secret-key\"]\n\
             [providers.d24]\nkind = \"d24\"\nbase_url = \"https://d24.invalid\"\n\
             login = \"d24-login\"\n",
            grpc_taken.local_addr().unwrap(),
            http_taken.local_addr().unwrap(),
            dir.path().display()
        ),
    )
    .unwrap();
    // Without its secret_key the account is incomplete; the environment supplies it.
    let (code, out) = check_config(&good, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(out.trim().lines().count(), 1, "{out}");
    assert!(out.contains("providers.d24.secret_key"), "{out}");
    let env = [(
        "REFUND_GATEWAY__PROVIDERS__D24__SECRET_KEY",
        "d24-secret-from-env",
    )];
    let (code, out) = check_config(&good, &env);
    assert_eq!(code, Some(0), "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("config OK"));
    let summary = lines.next().unwrap();
    assert!(
        summary.contains("1 tenants") && summary.contains("d24 (d24)"),
        "{summary}"
    );
    for secret in ["acme-secret-key", "d24-secret-from-env", "d24-login"] {
        assert!(!out.contains(secret), "{secret} printed: {out}");
    }
    assert!(
        !dir.path().join("gw.db").exists(),
        "check-config created the store"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[store]\nurl = \"mysql://db\"\nstatement_timeout_ms = 0\n\
         [limits]\nburst = 0\n\
         [[tenants]]\nid = \"acme\"\napi_keys = [\"shared-key\"]\n\
         [[tenants]]\nid = \"globex\"\napi_keys = [\"shared-key\"]\nproviders = [\"nope\"]\n\
         [providers.d24]\nkind = \"d24\"\nbase_url = \"https://d24.invalid\"\nlogin = \"l\"\n",
    )
    .unwrap();
    let expected = [
        "store.url:",
        "store.statement_timeout_ms:",
        "limits.burst:",
        "tenants[1].api_keys[0]: key also used by tenant acme",
        "tenants[1].providers:",
        "providers.d24.secret_key",
    ];
    let (code, out) = check_config(&bad, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(out.trim().lines().count(), expected.len(), "{out}");
    for key in expected {
        assert_eq!(
            out.lines().filter(|l| l.contains(key)).count(),
            1,
            "one line for {key} in {out}"
        );
    }
    assert!(!out.contains("shared-key"), "{out}");
    // `serve` refuses it the same way, before opening anything.
    let served = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(served.status.code(), Some(2));
    let stderr = String::from_utf8(served.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), expected.len(), "{stderr}");

    // Keys of the wrong type, in several tables: each named.
    std::fs::write(
        &bad,
        "[server]\ngrpc_listen = 12\n[store]\nbusy_timeout_ms = \"soon\"\n\
         [[tenants]]\nid = \"acme\"\n[nonsense]\nx = 1\n",
    )
    .unwrap();
    let (code, out) = check_config(&bad, &[]);
    assert_eq!(code, Some(2), "{out}");
    for key in [
        "server.grpc_listen:",
        "store.busy_timeout_ms:",
        "tenants[0].api_keys: required",
        "nonsense: unknown table",
    ] {
        assert!(out.contains(key), "{key} in {out}");
    }
    assert_eq!(out.trim().lines().count(), 4, "{out}");
}
