//! Reading the merged file and environment into a [`Config`]. When the whole does not
//! deserialize, each table is read on its own (and each tenant), so every table with a
//! problem is named, not just the first: `server.grpc_listen: invalid type ...`,
//! `tenants[1].api_keys: required`.

use figment::{
    Figment,
    error::Kind,
    value::{Dict, Value},
};
use serde::de::DeserializeOwned;

use super::{
    Config, ConfigError, ConfigErrors, LimitsConfig, ProviderTable, SandboxConfig, ServerConfig,
    StoreConfig, TelemetryConfig, TenantConfig, WorkerConfig, one_line,
};

/// The top-level tables a configuration may have.
const TABLES: [&str; 8] = [
    "server",
    "store",
    "tenants",
    "providers",
    "sandbox",
    "worker",
    "limits",
    "telemetry",
];

/// The merged tables as read, kept to compare with a later reading. Its `Debug` shows the
/// table names only: the values may be credentials.
#[derive(Clone, Default)]
pub(super) struct Raw(Dict);

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Raw {
    /// The keys (`server.grpc_listen`, `providers.d24`) whose values differ in `newer`,
    /// outside the tables in `except`.
    pub(super) fn changed(&self, newer: &Raw, except: &[&str]) -> Vec<String> {
        let empty = Value::from(Dict::new());
        let mut changed = Vec::new();
        let names: std::collections::BTreeSet<&String> =
            self.0.keys().chain(newer.0.keys()).collect();
        for name in names {
            if except.contains(&name.as_str()) {
                continue;
            }
            let (old, new) = (
                self.0.get(name).unwrap_or(&empty),
                newer.0.get(name).unwrap_or(&empty),
            );
            if old == new {
                continue;
            }
            match (old.as_dict(), new.as_dict()) {
                (Some(old), Some(new)) => {
                    let keys: std::collections::BTreeSet<&String> =
                        old.keys().chain(new.keys()).collect();
                    changed.extend(
                        keys.into_iter()
                            .filter(|k| old.get(*k) != new.get(*k))
                            .map(|k| format!("{name}.{k}")),
                    );
                }
                _ => changed.push(name.clone()),
            }
        }
        changed
    }
}

/// The configuration in `figment`, or every table that does not read.
pub(super) fn from_figment(figment: Figment) -> Result<Config, ConfigErrors> {
    match figment.extract::<Config>() {
        Ok(mut config) => {
            config.raw = Raw(figment.extract::<Dict>().unwrap_or_default());
            Ok(config)
        }
        Err(first) => Err(ConfigErrors(table_problems(&figment, first))),
    }
}

/// Each table read on its own, to name every one that does not read.
fn table_problems(figment: &Figment, first: figment::Error) -> Vec<ConfigError> {
    let top = match figment.extract::<Dict>() {
        Ok(top) => top,
        // Not even a table of tables (not TOML): that is the one problem.
        Err(err) => return describe("", err),
    };
    let mut problems: Vec<ConfigError> = top
        .keys()
        .filter(|k| !TABLES.contains(&k.as_str()))
        .map(|k| ConfigError(format!("{k}: unknown table (known: {})", TABLES.join(", "))))
        .collect();
    table::<ServerConfig>(&top, "server", &mut problems);
    table::<StoreConfig>(&top, "store", &mut problems);
    table::<SandboxConfig>(&top, "sandbox", &mut problems);
    table::<WorkerConfig>(&top, "worker", &mut problems);
    table::<LimitsConfig>(&top, "limits", &mut problems);
    table::<TelemetryConfig>(&top, "telemetry", &mut problems);
    match top.get("providers") {
        Some(Value::Dict(_, accounts)) => {
            for (name, account) in accounts {
                read_as::<ProviderTable>(account, &format!("providers.{name}"), &mut problems);
            }
        }
        Some(_) => problems.push(ConfigError(
            "providers: must be a table of provider accounts".to_owned(),
        )),
        None => {}
    }
    match top.get("tenants") {
        Some(Value::Array(_, tenants)) => {
            for (i, tenant) in tenants.iter().enumerate() {
                read_as::<TenantConfig>(tenant, &format!("tenants[{i}]"), &mut problems);
            }
        }
        Some(_) => problems.push(ConfigError(
            "tenants: must be a list of tables ([[tenants]])".to_owned(),
        )),
        None => {}
    }
    if problems.is_empty() {
        problems = describe("", first);
    }
    problems
}

fn table<T: DeserializeOwned>(top: &Dict, name: &str, problems: &mut Vec<ConfigError>) {
    if let Some(value) = top.get(name) {
        read_as::<T>(value, name, problems);
    }
}

fn read_as<T: DeserializeOwned>(value: &Value, at: &str, problems: &mut Vec<ConfigError>) {
    if let Err(err) = value.deserialize::<T>() {
        problems.extend(describe(at, err));
    }
}

/// One line per error, naming its key under `at`.
fn describe(at: &str, err: figment::Error) -> Vec<ConfigError> {
    err.into_iter()
        .map(|err| {
            let mut path: Vec<&str> = Vec::new();
            if !at.is_empty() {
                path.push(at);
            }
            path.extend(err.path.iter().map(String::as_str));
            let (key, what) = match &err.kind {
                Kind::UnknownField(field, _) => {
                    path.push(field);
                    (path.join("."), "unknown key".to_owned())
                }
                Kind::MissingField(field) => {
                    path.push(field);
                    (path.join("."), "required".to_owned())
                }
                kind => (path.join("."), kind.to_string()),
            };
            let text = if key.is_empty() {
                err.to_string()
            } else {
                format!("{key}: {what}")
            };
            ConfigError(one_line(&text))
        })
        .collect()
}
