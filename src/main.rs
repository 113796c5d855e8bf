//! The `piimage` binary: parse, dispatch one handler per subcommand, print the error chain once.

mod cli;

use clap::Parser;

use cli::{Cli, Command, EXIT_FAILURE};

fn main() {
    let args = Cli::parse();
    let result = match &args.command {
        Command::Inspect(a) => cli::inspect::run(a, &args.global),
        Command::Validate(a) => cli::validate::run(a),
        Command::Build(a) => cli::build::run(a, &args.global),
        Command::Plan(a) => cli::plan::run(a, &args.global),
    };
    if let Err(err) = result {
        eprintln!("error: {}", error_chain(&err));
        std::process::exit(EXIT_FAILURE);
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
