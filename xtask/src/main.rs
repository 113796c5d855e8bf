//! `cargo xtask fixtures [--force] [--out DIR]`: builds the fixture images and prints
//! their paths. `cargo xtask demo`: refreshes the committed demo base (`demo/`) from them. `cargo xtask bootable [--flavour F]... [--force]`: builds the bootable test
//! images (root, mmdebstrap and the Debian mirror needed) and prints their paths.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask fixtures [--force] [--out DIR]
       cargo xtask demo
       cargo xtask bootable [--flavour bookworm|trixie|ubuntu]... [--force]

  fixtures   build the test fixture images (cached; see tests/fixtures/INDEX.md)
  demo       copy the Trixie fixture (.img.xz) to demo/, the base README's first command
             builds on; run it when the fixture builder changes (a test says when)
  bootable   build the bootable test images the boot tests run under qemu (cached in
             target/bootable; needs root, mmdebstrap and the Debian mirror; all flavours
             unless --flavour is given)
  --force    rebuild even if the cache is up to date
  --out DIR  build the fixtures into DIR instead of target/fixtures";

#[derive(PartialEq)]
enum Task {
    Fixtures,
    Demo,
    Bootable,
}

struct Args {
    task: Task,
    force: bool,
    out: Option<PathBuf>,
    flavours: Vec<xtask::bootable::Flavour>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>> {
    let task = match args.next().as_deref() {
        Some("fixtures") => Task::Fixtures,
        Some("bootable") => Task::Bootable,
        Some("demo") => Task::Demo,
        Some("-h" | "--help" | "help") => return Ok(None),
        Some(other) => bail!("unknown task `{other}`\n\n{USAGE}"),
        None => bail!("no task given\n\n{USAGE}"),
    };
    let mut parsed = Args {
        task,
        force: false,
        out: None,
        flavours: Vec::new(),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--force" => parsed.force = true,
            "--out" if parsed.task == Task::Fixtures => {
                parsed.out = Some(args.next().context("--out needs a directory")?.into());
            }
            "--flavour" if parsed.task == Task::Bootable => {
                let name = args.next().context("--flavour needs a name")?;
                let f = xtask::bootable::Flavour::from_name(&name).with_context(|| {
                    format!("unknown flavour `{name}` (bookworm, trixie or ubuntu)")
                })?;
                parsed.flavours.push(f);
            }
            "-h" | "--help" => return Ok(None),
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    Ok(Some(parsed))
}

fn bootable(args: &Args) -> Result<()> {
    let flavours = if args.flavours.is_empty() {
        xtask::bootable::Flavour::ALL.to_vec()
    } else {
        args.flavours.clone()
    };
    // In parallel: most of a build is waiting for the mirror and for dpkg.
    let start = Instant::now();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = flavours
            .iter()
            .map(|&f| {
                s.spawn(move || {
                    eprintln!("  {}: building if needed (a few minutes)...", f.name());
                    let r = xtask::bootable::bootable(f, args.force);
                    if let Ok((_, rebuilt)) = &r {
                        let how = if *rebuilt { "built" } else { "up to date" };
                        eprintln!(
                            "  {}: {how} after {:.1}s",
                            f.name(),
                            start.elapsed().as_secs_f64()
                        );
                    }
                    r
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    for r in results {
        let (b, _) = r.map_err(|_| anyhow::anyhow!("a bootable build panicked"))??;
        println!("{}", b.image.display());
    }
    Ok(())
}

fn run() -> Result<()> {
    let Some(args) = parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    if args.task == Task::Bootable {
        return bootable(&args);
    }
    if args.task == Task::Demo {
        let path = xtask::refresh_demo(args.force, &|msg| eprintln!("  {msg}"))?;
        println!("{}", path.display());
        return Ok(());
    }
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
