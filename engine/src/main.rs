//! The `matchstream` binary: parse the command line, start logging, run the subcommand.

use std::process::ExitCode;

use clap::Parser;
use matchstream_engine::config::{Cli, Command};
use matchstream_engine::signals;
use matchstream_engine::tools::{demo, replay, watch};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => serve(config),
        Command::Demo(args) => demo::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Watch(args) => watch::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("matchstream: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: matchstream_engine::Config) -> anyhow::Result<()> {
    signals::block_termination();
    let server = matchstream_engine::start(config)?;
    let sig = signals::wait_termination();
    log::info!("signal {sig} received");
    server.shutdown();
    Ok(())
}
