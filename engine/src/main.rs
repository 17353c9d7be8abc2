//! The `matchstream` binary: parse the command line, start logging, run the subcommand.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use matchstream_engine::config::{Cli, Command};
use matchstream_engine::tools::{demo, drain, replay, top, watch};
use matchstream_engine::{logging, signals};

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Serve(config) => serve(config),
        Command::Demo(mut args) => match args.server.load_token_file() {
            Ok(()) => demo::run(args),
            Err(e) => Err(e.into()),
        },
        Command::Replay(args) => replay::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Drain(args) => drain::run(args),
        Command::Top(args) => top::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("matchstream: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until drained: by `POST /1/admin/drain`, or by SIGTERM/SIGINT within the grace
/// period (`signals`); then stops and exits 0.
fn serve(mut config: matchstream_engine::Config) -> anyhow::Result<()> {
    config.load_token_file()?;
    signals::block_termination();
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let server = matchstream_engine::start(config)?;
    signals::drain_on_termination(server.node.clone(), grace)?;
    server.wait();
    server.shutdown();
    Ok(())
}
