//! The `piimage` binary: parse, dispatch one handler per subcommand, print the error chain once.

mod cli;

use clap::Parser;

use cli::color::{Paint, Stream, Style};
use cli::{Cli, Command, EXIT_FAILURE};

/// Exit status after a signal when none was recorded (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;

fn main() {
    let args = Cli::parse();
    install_interrupt_handler();
    let result = match &args.command {
        Command::Inspect(a) => cli::inspect::run(a, &args.global),
        Command::Validate(a) => cli::validate::run(a, &args.global),
        Command::Build(a) => cli::build::run(a, &args.global),
        Command::Plan(a) => cli::plan::run(a, &args.global),
        Command::Merge(a) => cli::merge::run(a, &args.global),
        Command::Localize(a) => cli::merge::run_localize(a, &args.global),
        Command::Flash(a) => cli::flash::run(a, &args.global),
        Command::Eeprom(a) => cli::eeprom::run(a, &args.global),
        Command::Init(a) => cli::init::run(a, &args.global),
        Command::Schema(a) => cli::schema::run(a, &args.global),
        Command::Completions(a) => cli::docs::run_completions(a, &args.global),
        Command::Man(a) => cli::docs::run_man(a, &args.global),
        Command::Help(a) => cli::docs::run_help(a, &args.global),
    };
    if let Err(err) = result {
        if piimage::cancel::is_requested() {
            eprintln!(
                "interrupted: unfinished outputs were removed; no file was left under its final name"
            );
            std::process::exit(piimage::cancel::exit_status().unwrap_or(EXIT_INTERRUPTED));
        }
        let message = piimage::error::chain(err.as_ref());
        if let Some(name) = args.command.json() {
            // Best effort: stdout may be gone; the exit status still says it failed.
            let _ = cli::json::print(&cli::json::error(name, &err, &message));
        } else {
            let paint = Paint::new(args.global.color, Stream::Stderr);
            eprintln!("{} {message}", paint.paint(Style::BoldRed, "error:"));
        }
        std::process::exit(EXIT_FAILURE);
    }
}

/// The first Ctrl-C (or SIGTERM) stops the work: inside a section that polls for it (download,
/// decoding, writing outputs) long loops return an "interrupted" error and partial outputs are
/// removed as the error unwinds; anywhere else (validating, rendering, planning, waiting on a
/// FIFO) the process ends at once, having nothing to clean up. A second signal always ends it
/// at once (hidden partial files are then swept by the next build). The status is 128 + the
/// first signal: 130 for SIGINT, 143 for SIGTERM. A thread of its own waits for the signals, so
/// whatever the main thread is blocked in does not delay them.
fn install_interrupt_handler() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if let piimage::cancel::OnSignal::Exit(code) = piimage::cancel::on_signal(signal) {
                eprintln!("interrupted");
                std::process::exit(code);
            }
        }
    });
}
