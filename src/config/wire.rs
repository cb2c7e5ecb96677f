//! `[server.tls]` and the limits on the wire of `[server]` (README "Deploying").

use std::path::PathBuf;

use serde::Deserialize;

use super::ServerConfig;

/// `[server.tls]`: TLS on both listeners. The files are read again when they change.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the gateway's own certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the first certificate.
    pub key_file: PathBuf,
    /// PEM CA certificate(s): when set, the gRPC listener requires client certificates
    /// signed by one of them (mTLS). The HTTP listener never asks for one.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

pub(super) fn default_max_request_message_bytes() -> usize {
    1024 * 1024
}
pub(super) fn default_max_response_message_bytes() -> usize {
    16 * 1024 * 1024
}
pub(super) fn default_max_concurrent_streams() -> u32 {
    256
}
pub(super) fn default_http2_keepalive_interval_ms() -> u64 {
    30_000
}
pub(super) fn default_http2_keepalive_timeout_ms() -> u64 {
    20_000
}
pub(super) fn default_idle_timeout_ms() -> u64 {
    600_000
}

/// Limits of zero would refuse every call (or, for the keepalive, ping without pause).
pub(super) fn check(server: &ServerConfig) -> Result<(), String> {
    for (key, value) in [
        (
            "max_request_message_bytes",
            server.max_request_message_bytes as u64,
        ),
        (
            "max_response_message_bytes",
            server.max_response_message_bytes as u64,
        ),
        (
            "max_concurrent_streams",
            u64::from(server.max_concurrent_streams),
        ),
        (
            "http2_keepalive_interval_ms",
            server.http2_keepalive_interval_ms,
        ),
        (
            "http2_keepalive_timeout_ms",
            server.http2_keepalive_timeout_ms,
        ),
    ] {
        if value == 0 {
            return Err(format!("server.{key} must be above 0"));
        }
    }
    if let Some(tls) = &server.tls {
        for (key, path) in [
            ("cert_file", Some(&tls.cert_file)),
            ("key_file", Some(&tls.key_file)),
            ("client_ca_file", tls.client_ca_file.as_ref()),
        ] {
            if path.is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(format!("server.tls.{key} is empty"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn contract_tls_table_and_wire_defaults_parse() {
        let config = Config::from_toml(
            "[server.tls]\ncert_file = \"/etc/refund-gateway/tls.crt\"\n\
             key_file = \"/etc/refund-gateway/tls.key\"\n\
             client_ca_file = \"/etc/refund-gateway/ca.crt\"",
        )
        .unwrap();
        let tls = config.server.tls.as_ref().unwrap();
        assert_eq!(tls.cert_file.to_str(), Some("/etc/refund-gateway/tls.crt"));
        assert!(tls.client_ca_file.is_some());
        assert_eq!(config.server.public_url(), "https://127.0.0.1:8080");
        assert_eq!(config.server.max_request_message_bytes, 1024 * 1024);
        assert_eq!(config.server.max_response_message_bytes, 16 * 1024 * 1024);
        assert_eq!(config.server.max_concurrent_streams, 256);
        assert_eq!(config.server.idle_timeout_ms, 600_000);
        assert!(Config::from_toml("").unwrap().server.tls.is_none());
    }

    #[test]
    fn zero_limits_and_unknown_tls_keys_are_refused_in_one_line() {
        for (text, needle) in [
            (
                "[server]\nmax_request_message_bytes = 0",
                "server.max_request_message_bytes",
            ),
            (
                "[server]\nmax_concurrent_streams = 0",
                "server.max_concurrent_streams",
            ),
            (
                "[server]\nhttp2_keepalive_timeout_ms = 0",
                "server.http2_keepalive_timeout_ms",
            ),
            (
                "[server.tls]\ncert_file = \"\"\nkey_file = \"k\"",
                "server.tls.cert_file",
            ),
            ("[server.tls]\ncert_file = \"c\"", "key_file"),
            (
                "[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nca_file = \"x\"",
                "ca_file",
            ),
        ] {
            let err = Config::from_toml(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
            assert!(!err.contains('\n'));
        }
        assert!(Config::from_toml("[server]\nidle_timeout_ms = 0").is_ok());
    }
}
