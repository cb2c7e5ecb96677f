//! The command line (docs/API.md "Command line").

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand};

/// refund-gateway: one gRPC API to refund payments at D24, PayMongo and Compago.
#[derive(Debug, Parser)]
#[command(name = "refund-gateway", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway. With no config file: the embedded default (SQLite file
    /// ./refund-gateway.db, open mode, sandbox providers on loopback).
    Serve {
        /// The configuration file (TOML). Every key can be overridden with
        /// REFUND_GATEWAY__SECTION__KEY environment variables.
        #[arg(long, env = "REFUND_GATEWAY_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file (with the REFUND_GATEWAY__ environment overrides) without
    /// starting anything: no port is opened and nothing is contacted. Prints "config OK" and
    /// a summary, exit 0; or one line per problem, each naming its key, exit 2.
    CheckConfig {
        /// The configuration file (TOML); absent: the embedded default.
        #[arg(long, env = "REFUND_GATEWAY_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run the provider simulators alone (for other systems' integration tests) and print
    /// each simulated provider's base URL, credentials and fixture payments.
    Sandbox {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
    },
}
