//! The `refund-gateway` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser as _;
use refund_gateway::{
    app,
    cli::{Cli, Command},
    config::Config,
    telemetry,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config).await,
        Command::Sandbox { listen } => {
            telemetry::init();
            run_sandbox(listen).await
        }
    }
}

async fn serve(config: Option<std::path::PathBuf>) -> ExitCode {
    // The provider tables are read by their providers (`app::check`): still the config.
    let config = match Config::load(config.as_deref()).and_then(|c| app::check(&c).map(|_| c)) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("refund-gateway: bad config: {err}");
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
    let code = serve_with(config).await;
    // The spans of the last calls reach the collector before the process ends.
    telemetry.shutdown().await;
    code
}

async fn serve_with(config: Config) -> ExitCode {
    let running = match app::start(config).await {
        Ok(running) => running,
        Err(err) => {
            eprintln!("refund-gateway: cannot start: {}", one_line(&err));
            return ExitCode::from(1);
        }
    };
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
