//! `confab`: the chat server binary. Thin by design; everything lives in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use confab::{Config, Server};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "confab",
    version,
    about = "Self-hosted chat server (ConnectyCube and ChatServer APIs)"
)]
struct Cli {
    /// TOML configuration file; `CONFAB_*` environment variables override it.
    #[arg(long, global = true, env = "CONFAB_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server until SIGINT/SIGTERM.
    Serve,
    /// Manage applications.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
}

#[derive(Subcommand)]
enum AppCommand {
    /// Create an application and print its credentials as JSON.
    Create {
        #[arg(long)]
        name: String,
    },
    /// Delete an application and everything in it (users, dialogs, messages, blobs, push).
    Delete {
        #[arg(long)]
        id: i64,
    },
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONFAB_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("confab: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve => match Server::start(config).await {
            Ok(server) => {
                shutdown_signal().await;
                tracing::info!("shutting down");
                server.shutdown().await;
                Ok(())
            }
            Err(e) => Err(e),
        },
        Command::App {
            command: AppCommand::Create { name },
        } => confab::create_app(&config, &name).await.map(|c| {
            println!(
                "{}",
                json!({
                    "id": c.app.id.get(),
                    "name": c.app.name,
                    "auth_key": c.app.auth_key,
                    "auth_secret": c.auth_secret,
                    "api_key": c.api_key,
                })
            );
        }),
        Command::App {
            command: AppCommand::Delete { id },
        } => match confab_core::AppId::new(id) {
            Ok(app) => confab::delete_app(&config, app).await.map(|()| {
                println!("{}", json!({ "deleted": id }));
            }),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confab: {}", e.message);
            if let Some(source) = &e.source {
                eprintln!("  caused by: {source}");
            }
            ExitCode::FAILURE
        }
    }
}
