//! The `refund-gateway` binary: parse the command line, set up logging, run.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::Parser as _;
use refund_gateway::{
    app,
    cli::{Cli, Command},
    config::{Config, ConfigErrors},
    providers::AccountPlan,
    telemetry,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config).await,
        Command::CheckConfig { config } => check_config(config.as_deref()),
        Command::Sandbox { listen } => {
            telemetry::init();
            run_sandbox(listen).await
        }
    }
}

/// The configuration in `file` with every problem checked (`app::check` also reads the
/// provider tables with their providers' rules), or every problem.
fn checked_config(file: Option<&Path>) -> Result<(Config, Vec<AccountPlan>), ConfigErrors> {
    let config = Config::read(file)?;
    let plans = app::check(&config)?;
    Ok((config, plans))
}

fn check_config(file: Option<&Path>) -> ExitCode {
    match checked_config(file) {
        Ok((config, plans)) => {
            println!("config OK");
            println!("{}", summary(&config, &plans));
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for line in problems.lines() {
                println!("{line}");
            }
            ExitCode::from(2)
        }
    }
}

/// One line: what the configuration sets up (names and counts, never a secret).
fn summary(config: &Config, plans: &[AccountPlan]) -> String {
    let tenants = if config.tenants.is_empty() {
        "open mode (no tenants)".to_owned()
    } else {
        let keys: usize = config.tenants.iter().map(|t| t.api_keys.len()).sum();
        format!("{} tenants, {keys} API keys", config.tenants.len())
    };
    let accounts: Vec<String> = plans
        .iter()
        .map(|p| {
            let sandbox = if p.sandbox { ", sandbox" } else { "" };
            format!("{} ({}{sandbox})", p.name, p.kind)
        })
        .collect();
    let l = &config.limits;
    format!(
        "grpc {}, http {}, store {}, {tenants}, provider accounts: {}; limits {}/s burst {}, {} watch streams per tenant",
        config.server.grpc_listen,
        config.server.http_listen,
        config.store.redacted_url(),
        if accounts.is_empty() {
            "none".to_owned()
        } else {
            accounts.join(", ")
        },
        l.requests_per_second,
        l.burst,
        l.watch_streams,
    )
}

async fn serve(file: Option<PathBuf>) -> ExitCode {
    let config = match checked_config(file.as_deref()) {
        Ok((config, _)) => config,
        Err(problems) => {
            for line in problems.lines() {
                eprintln!("refund-gateway: bad config: {line}");
            }
            return ExitCode::from(2);
        }
    };
    // Logging (and trace export) as the configuration says, before anything logs.
    let telemetry = match telemetry::start(config.telemetry.otlp_endpoint.as_deref()) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("refund-gateway: cannot export traces: {}", one_line(&err));
            return ExitCode::from(1);
        }
    };
    let code = serve_with(config, file).await;
    // The spans of the last calls reach the collector before the process ends.
    telemetry.shutdown().await;
    code
}

async fn serve_with(config: Config, file: Option<PathBuf>) -> ExitCode {
    // Made before anything starts: from here on a SIGHUP reloads instead of ending the
    // process.
    #[cfg(unix)]
    let hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(err) => {
            eprintln!("refund-gateway: cannot listen for SIGHUP: {err}");
            return ExitCode::from(1);
        }
    };
    let running = match app::start(config).await {
        Ok(running) => running,
        Err(err) => {
            eprintln!("refund-gateway: cannot start: {}", one_line(&err));
            return ExitCode::from(1);
        }
    };
    #[cfg(unix)]
    tokio::spawn(
        running
            .reloader()
            .on_hangup(file, hangup, running.shutdown_token()),
    );
    let token = running.shutdown_token();
    tokio::spawn(async move {
        stop_signal().await;
        token.cancel();
    });
    match running.wait().await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("refund-gateway: {}", one_line(&err));
            ExitCode::from(1)
        }
    }
}

async fn run_sandbox(listen: std::net::SocketAddr) -> ExitCode {
    let running = match simulators::start(listen).await {
        Ok(running) => running,
        Err(err) => {
            eprintln!("refund-gateway: cannot start the simulators on {listen}: {err}");
            return ExitCode::from(1);
        }
    };
    println!("{}", running.describe());
    stop_signal().await;
    if let Err(err) = running.stop().await {
        eprintln!("refund-gateway: simulators did not stop cleanly: {err}");
    }
    ExitCode::SUCCESS
}

fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
