//! `cargo xtask fixtures [--force] [--out DIR]`: builds the fixture images and prints
//! their paths.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask fixtures [--force] [--out DIR]

  fixtures   build the test fixture images (cached; see tests/fixtures/INDEX.md)
  --force    rebuild even if the cache is up to date
  --out DIR  build into DIR instead of target/fixtures";

struct Args {
    force: bool,
    out: Option<PathBuf>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>> {
    match args.next().as_deref() {
        Some("fixtures") => {}
        Some("-h" | "--help" | "help") => return Ok(None),
        Some(other) => bail!("unknown task `{other}`\n\n{USAGE}"),
        None => bail!("no task given\n\n{USAGE}"),
    }
    let mut parsed = Args {
        force: false,
        out: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--force" => parsed.force = true,
            "--out" => parsed.out = Some(args.next().context("--out needs a directory")?.into()),
            "-h" | "--help" => return Ok(None),
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    Ok(Some(parsed))
}

fn run() -> Result<()> {
    let Some(args) = parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let dir = args.out.unwrap_or_else(xtask::fixtures_dir);
    let start = Instant::now();
    let outcome = xtask::build_fixtures(&dir, args.force, &|msg| eprintln!("  {msg}"))?;
    let how = if outcome.rebuilt {
        "built"
    } else {
        "up to date"
    };
    eprintln!(
        "fixtures {how} in {:.1}s: {}",
        start.elapsed().as_secs_f64(),
        outcome.dir.display()
    );
    for f in &outcome.files {
        println!("{}", f.display());
    }
    println!("{}", outcome.dir.join(xtask::INDEX_FILE).display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
