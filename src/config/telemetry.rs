//! `[telemetry]`: where traces go.

use serde::Deserialize;

use super::ConfigError;

/// Traces: exported over OTLP/gRPC when `otlp_endpoint` is set; none otherwise.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The OTLP/gRPC endpoint of a collector, `http://host:port` (usually port 4317).
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// `otlp_endpoint` is `http://host:port`: the exporter speaks plain gRPC (to a collector
    /// on the host, or beside the gateway in its pod).
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(());
        };
        let host = endpoint.strip_prefix("http://").unwrap_or("");
        if host.is_empty()
            || host.contains(char::is_whitespace)
            || host.contains('@')
            || host.trim_end_matches('/').contains('/')
        {
            // The value is not repeated: it might carry a password.
            return Err(ConfigError(
                "telemetry.otlp_endpoint must be http://host:port (no user, no path)".to_owned(),
            ));
        }
        Ok(())
    }
}
