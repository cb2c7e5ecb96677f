//! TLS, mTLS, certificate rotation and the limits on the wire, through the real binary with
//! certificates made in the test.

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use refund_gateway::pb::{self, refund_service_client::RefundServiceClient};
use support::{
    pki::{Ca, Expiry, Leaf, write},
    process::{BIN, Gateway, Proc, sandbox_config},
};
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};

/// The shared sandbox config; `tls` is the `[server.tls]` table's body.
fn config(dir: &Path, server_extra: &str, tls: Option<&str>) -> PathBuf {
    let tls = tls
        .map(|t| format!("[server.tls]\n{t}\n"))
        .unwrap_or_default();
    sandbox_config(dir, &format!("{server_extra}\n{tls}"), "")
}

/// `[server.tls]` with the server certificate written to `dir`; `client_ca`: mTLS.
fn tls_files(dir: &Path, server: &Leaf, client_ca: Option<&Ca>) -> String {
    let cert = write(dir, "tls.crt", &server.cert_pem);
    let key = write(dir, "tls.key", &server.key_pem);
    let mut table = format!(
        "cert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    if let Some(ca) = client_ca {
        let ca = write(dir, "clients-ca.crt", &ca.pem);
        table.push_str(&format!("client_ca_file = \"{}\"\n", ca.display()));
    }
    table
}

fn port(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// A gRPC channel over TLS to `localhost:port`, trusting `ca`, with a client certificate.
async fn tls_channel(port: u16, ca: &Ca, client: Option<&Leaf>) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .domain_name("localhost");
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
    }
    Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|err| format!("{err:?}"))
}

/// ListProviders through `channel` (or the error on the way).
async fn list_providers(channel: Result<Channel, String>) -> Result<Vec<String>, String> {
    let mut client = RefundServiceClient::new(channel?);
    let providers = client
        .list_providers(pb::ListProvidersRequest::default())
        .await
        .map_err(|status| format!("{status:?}"))?;
    Ok(providers
        .into_inner()
        .providers
        .into_iter()
        .map(|p| p.name)
        .collect())
}

fn fixture_refund(request_id: &str) -> pb::CreateRefundRequest {
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

/// The certificate the gRPC listener presents to a new connection right now.
async fn presented_certificate(port: u16, ca: &Ca) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// gRPC over TLS with the CA (tonic and grpcurl), gRPC-Web over TLS, HTTPS health; plaintext
/// refused on both listeners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_listeners_speak_tls_and_refuse_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let server = ca.server("gateway", Expiry::Valid);
    let gw = Gateway::start(
        &config(dir.path(), "", Some(&tls_files(dir.path(), &server, None))),
        &[],
    );
    let (grpc, http) = (port(&gw.grpc), port(&gw.http));

    assert_eq!(
        list_providers(tls_channel(grpc, &ca, None).await)
            .await
            .unwrap(),
        ["compago"]
    );
    let mut client = RefundServiceClient::new(tls_channel(grpc, &ca, None).await.unwrap());
    let missing = client
        .get_refund(pb::GetRefundRequest {
            id: "rf_nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");

    // Plaintext gRPC gets no answer from a TLS listener.
    let plain = Channel::from_shared(gw.grpc.clone())
        .unwrap()
        .connect()
        .await;
    let plain = list_providers(plain.map_err(|e| e.to_string())).await;
    assert!(plain.is_err(), "plaintext call answered: {plain:?}");

    // grpcurl with the CA, through reflection.
    let ca_file = write(dir.path(), "ca.crt", &ca.pem);
    let out = Command::new("grpcurl")
        .arg("-cacert")
        .arg(&ca_file)
        .arg(format!("localhost:{grpc}"))
        .arg("refunds.v1.RefundService/ListProviders")
        .output()
        .expect("grpcurl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("\"compago\""),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // HTTPS on the HTTP listener, and gRPC-Web over TLS on the gRPC listener.
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let health = https
        .get(format!("https://localhost:{http}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let web = https
        .post(format!(
            "https://localhost:{grpc}/refunds.v1.RefundService/ListProviders"
        ))
        .header("content-type", "application/grpc-web+proto")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .unwrap();
    assert_eq!(web.status(), 200);
    let body = web.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("compago") && text.contains("grpc-status:0"),
        "{text:?}"
    );
    let plain_http = reqwest::get(format!("http://127.0.0.1:{http}/healthz")).await;
    assert!(
        plain_http.is_err(),
        "plaintext HTTP answered: {plain_http:?}"
    );
}

/// mTLS: the gRPC listener takes only client certificates signed by the client CA; the HTTP
/// listener asks for none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_requires_a_client_certificate_signed_by_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("server CA");
    let clients = Ca::new("clients CA");
    let rogue = Ca::new("another CA");
    let server = ca.server("gateway", Expiry::Valid);
    let gw = Gateway::start(
        &config(
            dir.path(),
            "",
            Some(&tls_files(dir.path(), &server, Some(&clients))),
        ),
        &[],
    );
    let grpc = port(&gw.grpc);

    let good = clients.client("billing");
    assert_eq!(
        list_providers(tls_channel(grpc, &ca, Some(&good)).await)
            .await
            .unwrap(),
        ["compago"]
    );
    let none = list_providers(tls_channel(grpc, &ca, None).await).await;
    assert!(none.is_err(), "no client certificate answered: {none:?}");
    let other = rogue.client("billing");
    let other = list_providers(tls_channel(grpc, &ca, Some(&other)).await).await;
    assert!(
        other.is_err(),
        "a foreign CA's certificate answered: {other:?}"
    );
    // And the good one still works afterwards.
    assert!(
        list_providers(tls_channel(grpc, &ca, Some(&good)).await)
            .await
            .is_ok()
    );

    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let health = https
        .get(format!("https://localhost:{}/healthz", port(&gw.http)))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// Rotation: a pair that does not load is refused with one line and the old one stays;
/// a good pair reaches new connections within a minute, and a watch stream opened before
/// keeps receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificate_reaches_new_connections_and_open_streams_stay() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let a = ca.server("gateway-a", Expiry::Valid);
    let b = ca.server("gateway-b", Expiry::Valid);
    let gw = Gateway::start(
        &config(dir.path(), "", Some(&tls_files(dir.path(), &a, None))),
        &[],
    );
    let grpc = port(&gw.grpc);
    assert_eq!(presented_certificate(grpc, &ca).await, a.der);

    let old = tls_channel(grpc, &ca, None).await.unwrap();
    let mut feed = RefundServiceClient::new(old.clone())
        .watch_refunds(pb::WatchRefundsRequest::default())
        .await
        .unwrap()
        .into_inner();

    // A broken rotation: B's certificate with A's key.
    write(dir.path(), "tls.crt", &b.cert_pem);
    let refused = gw.proc.wait_for_line("do not load");
    assert!(
        refused.contains("does not match the certificate"),
        "{refused}"
    );
    assert_eq!(presented_certificate(grpc, &ca).await, a.der);

    // The key arrives: B is taken.
    let rotated = Instant::now();
    write(dir.path(), "tls.key", &b.key_pem);
    loop {
        if presented_certificate(grpc, &ca).await == b.der {
            break;
        }
        assert!(
            rotated.elapsed() < Duration::from_secs(60),
            "still the old certificate:\n{}",
            gw.proc.all_output()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "certificate B served {:?} after rotation",
        rotated.elapsed()
    );
    assert!(gw.proc.all_output().contains("TLS certificate reloaded"));
    assert_eq!(
        gw.proc.all_output().matches("do not load").count(),
        1,
        "a refused pair is reported once"
    );

    // A refund made over a new connection (certificate B) reaches the stream opened on A.
    let mut fresh = RefundServiceClient::new(tls_channel(grpc, &ca, None).await.unwrap());
    fresh
        .create_refund(fixture_refund("after-rotation"))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), feed.message())
        .await
        .expect("the open stream still delivers")
        .unwrap()
        .unwrap()
        .event
        .unwrap();
    assert_eq!(event.refund.unwrap().request_id, "after-rotation");
    // The old connection itself still answers.
    assert!(list_providers(Ok(old)).await.is_ok());
}

/// Runs `serve` with `config`; expects a non-zero exit with one `bad config` line holding
/// every one of `needles`.
fn refuses_to_start(config: &Path, needles: &[&str]) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config"]).arg(config);
    let mut proc = Proc::start(cmd);
    let status = proc.wait_exit(Duration::from_secs(20));
    assert!(!status.success());
    let output = proc.all_output();
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("bad config"))
        .collect();
    assert_eq!(lines.len(), 1, "{output}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "{needle:?} not in {:?}",
            lines[0]
        );
    }
    assert!(!output.contains("serving"), "{output}");
}

#[test]
fn bad_tls_files_stop_the_start_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let good = ca.server("gateway", Expiry::Valid);
    let other = ca.server("other", Expiry::Valid);
    let expired = ca.server("gateway", Expiry::Expired);
    let d = dir.path();

    let missing = format!(
        "cert_file = \"{}\"\nkey_file = \"{}\"\n",
        d.join("absent.crt").display(),
        write(d, "k0.key", &good.key_pem).display()
    );
    refuses_to_start(
        &config(d, "", Some(&missing)),
        &["server.tls.cert_file", "absent.crt", "no such file"],
    );

    let mismatched = format!(
        "cert_file = \"{}\"\nkey_file = \"{}\"\n",
        write(d, "good.crt", &good.cert_pem).display(),
        write(d, "other.key", &other.key_pem).display()
    );
    refuses_to_start(
        &config(d, "", Some(&mismatched)),
        &["server.tls.key_file", "other.key", "does not match"],
    );

    let old = format!(
        "cert_file = \"{}\"\nkey_file = \"{}\"\n",
        write(d, "expired.crt", &expired.cert_pem).display(),
        write(d, "expired.key", &expired.key_pem).display()
    );
    refuses_to_start(
        &config(d, "", Some(&old)),
        &["expired.crt", "expired on 2021-01-01"],
    );

    let no_cert = format!(
        "cert_file = \"{}\"\nkey_file = \"{}\"\n",
        write(d, "empty.crt", "nothing here\n").display(),
        d.join("k0.key").display()
    );
    refuses_to_start(
        &config(d, "", Some(&no_cert)),
        &["empty.crt", "no certificate"],
    );

    let no_ca = format!(
        "cert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\n",
        d.join("good.crt").display(),
        d.join("k0.key").display(),
        d.join("absent-ca.crt").display()
    );
    refuses_to_start(
        &config(d, "", Some(&no_ca)),
        &["server.tls.client_ca_file", "absent-ca.crt"],
    );
}

/// A request above `max_request_message_bytes` is refused with RESOURCE_EXHAUSTED; the
/// gateway goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_is_resource_exhausted_and_serving_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        &config(dir.path(), "max_request_message_bytes = 2048", None),
        &[],
    );
    let mut client = RefundServiceClient::connect(gw.grpc.clone()).await.unwrap();
    let mut big = fixture_refund("too-big");
    big.metadata.insert("note".into(), "x".repeat(4096));
    let err = client.create_refund(big).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    {
        use tonic_types::StatusExt as _;
        let info = err.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "MESSAGE_TOO_LARGE");
        assert_eq!(info.domain, "refunds.v1");
    }
    // Same connection and a new one both still served; nothing was recorded.
    let listed = client
        .list_refunds(pb::ListRefundsRequest::default())
        .await
        .unwrap();
    assert!(listed.into_inner().refunds.is_empty());
    let mut again = RefundServiceClient::connect(gw.grpc.clone()).await.unwrap();
    again
        .create_refund(fixture_refund("small"))
        .await
        .expect("a request under the limit is served");
}

/// The idle timeout closes a connection on which nothing moves, and leaves an HTTP/2
/// connection with an open watch stream alone: its keepalive pings are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_live_streams_stay() {
    use tokio::io::AsyncReadExt as _;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        &config(
            dir.path(),
            "idle_timeout_ms = 1000\nhttp2_keepalive_interval_ms = 300",
            None,
        ),
        &[],
    );
    let channel = Channel::from_shared(gw.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut feed = RefundServiceClient::new(channel.clone())
        .watch_refunds(pb::WatchRefundsRequest::default())
        .await
        .unwrap()
        .into_inner();

    // A silent TCP connection on each listener is closed after about a second.
    for addr in [&gw.grpc, &gw.http] {
        let started = Instant::now();
        let mut silent = tokio::net::TcpStream::connect(addr.trim_start_matches("http://"))
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf))
            .await
            .expect("the idle connection is closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
            "closed after {waited:?}"
        );
    }

    // Three idle timeouts later, the stream still delivers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    RefundServiceClient::new(channel)
        .create_refund(fixture_refund("after-idle"))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), feed.message())
        .await
        .expect("the stream is still open")
        .unwrap()
        .unwrap()
        .event
        .unwrap();
    assert_eq!(event.refund.unwrap().request_id, "after-idle");
}
