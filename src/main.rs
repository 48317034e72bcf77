//! The `servesim` command: parse arguments, run, report errors, exit.

use clap::Parser;
use std::process::ExitCode;

use servesim::cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse_from(cli::args::expand_vllm_short_flags(std::env::args_os()));
    // `print!` panics when stdout is a closed pipe (`servesim ... | head`); that ends
    // the command quietly and successfully, like an I/O error on a closed pipe.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_stdout_closed(info.payload()) {
            default_hook(info);
        }
    }));
    let outcome = match std::panic::catch_unwind(|| cli::run(args)) {
        Ok(outcome) => outcome,
        Err(payload) if is_stdout_closed(payload.as_ref()) => return ExitCode::SUCCESS,
        Err(payload) => std::panic::resume_unwind(payload),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// A closed stdout (`servesim list models | head`) is not an error, whichever writer
/// met it (plain I/O, the CSV writer, JSON).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || e.downcast_ref::<csv::Error>().is_some_and(
                |c| matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == BrokenPipe),
            )
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
    })
}

/// Whether a panic is `print!` failing on a closed stdout.
fn is_stdout_closed(payload: &(dyn std::any::Any + Send)) -> bool {
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe")
}
