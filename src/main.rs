//! The `piimage` binary: parse, dispatch one handler per subcommand, print the error chain once.

mod cli;

use clap::Parser;

use cli::{Cli, Command, EXIT_FAILURE};

/// Exit status after Ctrl-C (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: i32 = 130;

fn main() {
    let args = Cli::parse();
    install_interrupt_handler();
    let result = match &args.command {
        Command::Inspect(a) => cli::inspect::run(a, &args.global),
        Command::Validate(a) => cli::validate::run(a),
        Command::Build(a) => cli::build::run(a, &args.global),
        Command::Plan(a) => cli::plan::run(a, &args.global),
        Command::Merge(a) => cli::merge::run(a, &args.global),
        Command::Localize(a) => cli::merge::run_localize(a, &args.global),
    };
    if let Err(err) = result {
        if piimage::cancel::is_requested() {
            eprintln!(
                "interrupted: unfinished outputs were removed; no file was left under its final name"
            );
            std::process::exit(EXIT_INTERRUPTED);
        }
        eprintln!("error: {}", error_chain(&err));
        std::process::exit(EXIT_FAILURE);
    }
}

/// The first Ctrl-C (or SIGTERM) asks the work to stop: long loops return an "interrupted"
/// error, partial outputs are removed as the error unwinds, and the process exits with 130.
/// A second one ends the process at once (hidden partial files are then swept by the next
/// build).
fn install_interrupt_handler() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = piimage::cancel::flag();
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it.
        let _ = signal_hook::flag::register_conditional_shutdown(
            signal,
            EXIT_INTERRUPTED,
            std::sync::Arc::clone(&flag),
        );
        let _ = signal_hook::flag::register(signal, std::sync::Arc::clone(&flag));
    }
}

/// The error and its causes as one line, `outer: cause: root cause`, skipping causes whose text
/// the outer message already includes (errors that print their source inline).
fn error_chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
