//! The configuration file: what parses, what is refused and how the refusal reads.
use super::*;
use secrecy::ExposeSecret as _;

#[test]
fn contract_example_parses() {
    let cfg = Config::from_toml(
        r#"
        [server]
        grpc_listen = "127.0.0.1:50051"
        http_listen = "127.0.0.1:8080"
        public_url  = "https://gateway.example.com"

        [telemetry]
        otlp_endpoint = "http://127.0.0.1:4317"

        [store]
        url = "sqlite://refund-gateway.db"

        [[tenants]]
        id = "acme"
        api_keys = ["key-1", "key-2"]
        providers = ["compago", "d24"]

        [providers.compago]
        kind = "compago"
        base_url = "https://api.harmony.compago.com"
        api_key = "cp-secret"
        timeout_ms = 10000

        [providers.d24]
        kind = "d24"
        base_url = "https://api-stg.directa24.com"
        login = "login"
        secret_key = "d24-secret"
        read_only_key = "ro"

        [providers.paymongo]
        kind = "paymongo"
        base_url = "https://api.paymongo.com"
        secret_key = "sk_test_x"
        webhook_secret = "whsk_x"
        "#,
    )
    .unwrap();
    assert_eq!(cfg.tenants[0].api_keys[1].expose_secret(), "key-2");
    assert_eq!(cfg.providers["d24"].kind, "d24");
    assert_eq!(cfg.server.public_url(), "https://gateway.example.com");
    assert_eq!(
        cfg.telemetry.otlp_endpoint.as_deref(),
        Some("http://127.0.0.1:4317")
    );
    let debug = format!("{cfg:?}");
    for secret in ["cp-secret", "d24-secret", "sk_test_x", "whsk_x", "key-1"] {
        assert!(!debug.contains(secret), "{secret} leaked into Debug");
    }
}

#[test]
fn bad_configs_say_what_is_wrong_in_one_line() {
    let cases = [
        ("[store]\nurl = \"mysql://x\"", "store.url"),
        ("[server]\ngrpc_listen = \"nope\"", "grpc_listen"),
        (
            "[[tenants]]\nid = \"a\"\napi_keys = [\"k\"]\nproviders = [\"x\"]",
            "provider \"x\"",
        ),
        (
            "[[tenants]]\nid = \"a\"\napi_keys = [\"k\"]\n[[tenants]]\nid = \"b\"\napi_keys = [\"k\"]",
            "more than one tenant",
        ),
        (
            "[[tenants]]\nid = \"a\"\napi_keys = [\"k\"]\noperator_keys = [\"k\"]",
            "an operator key is used twice",
        ),
        (
            "[[tenants]]\nid = \"a\"\napi_keys = [\"k\"]\noperator_keys = [\"\"]",
            "an operator key is empty",
        ),
        (
            "[[tenants]]\nid = \"a\"\napi_keys = [\"k\"]\napproval_above = { mxn = 5 }",
            "approval_above",
        ),
        (
            "[[tenants]]\nid = \"a\"\napi_keys = [\"k\"]\napproval_above = { MXN = -1 }",
            "approval_above.MXN",
        ),
        ("[serverr]\nx = 1", "serverr"),
        (
            "[store]\nstatement_timeout_ms = 0",
            "store.statement_timeout_ms",
        ),
        (
            "[store]\nconnect_timeout_ms = 0",
            "store.connect_timeout_ms",
        ),
        (
            "[telemetry]\notlp_endpoint = \"127.0.0.1:4317\"",
            "telemetry.otlp_endpoint",
        ),
        (
            "[telemetry]\notlp_endpoint = \"http://user:pw@collector:4317\"",
            "telemetry.otlp_endpoint",
        ),
        ("[telemetry]\nendpoint = \"http://x:4317\"", "endpoint"),
    ];
    for (text, needle) in cases {
        let err = Config::from_toml(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        assert!(!err.contains('\n'));
    }
}

#[test]
fn postgres_store_settings_parse_with_defaults() {
    let cfg = Config::from_toml(
        "[store]\nurl = \"postgresql://gw@db/refunds\"\nmax_connections = 20\n\
         statement_timeout_ms = 2500",
    )
    .unwrap();
    assert_eq!(cfg.store.url, "postgresql://gw@db/refunds");
    assert_eq!(cfg.store.max_connections, 20);
    assert_eq!(cfg.store.statement_timeout_ms, 2_500);
    assert_eq!(cfg.store.connect_timeout_ms, 5_000);
    assert_eq!(cfg.store.busy_timeout_ms, 5_000);
}

#[test]
fn store_passwords_never_show() {
    let cases = [
        (
            "postgres://gw:s3cret@db.internal:5432/refunds",
            "postgres://gw:***@db.internal:5432/refunds",
        ),
        (
            "postgresql://gw:p@ss/w@db/refunds?sslmode=require",
            "postgresql://gw:***@db/refunds?sslmode=require",
        ),
        (
            "postgres://db/refunds?user=gw&password=s3cret&sslmode=require",
            "postgres://db/refunds?user=gw&password=***&sslmode=require",
        ),
        ("postgres://gw@db/refunds", "postgres://gw@db/refunds"),
        ("sqlite://refund-gateway.db", "sqlite://refund-gateway.db"),
    ];
    for (url, shown) in cases {
        let store = StoreConfig {
            url: url.to_owned(),
            ..StoreConfig::default()
        };
        assert_eq!(store.redacted_url(), shown);
        assert!(!format!("{store:?}").contains("s3cret"));
        assert!(!format!("{store:?}").contains("p@ss"));
    }
}

#[test]
fn embedded_default_is_sandboxed_and_open() {
    let cfg = Config::embedded_default();
    cfg.check().unwrap();
    assert!(cfg.tenants.is_empty());
    assert_eq!(cfg.providers.len(), 3);
    assert!(cfg.providers.values().all(ProviderTable::is_sandbox));
    assert_eq!(cfg.server.public_url(), "http://127.0.0.1:8080");
}
