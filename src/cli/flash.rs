//! `piimage flash`: write a node image onto a card, or every node of a build onto a card each.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use piimage::flash::batch::{self, BatchEvents, BatchOptions};
use piimage::flash::target::{self, Checks, human_size};
use piimage::flash::{self as fl, BlockDevice, FlashError, FlashReport, SysRoot, Target};

use super::GlobalArgs;
use super::progress::Bars;

/// Arguments of `piimage flash`.
#[derive(Debug, Args)]
pub struct FlashArgs {
    /// A node image in any output format (.img, .img.zst, .img.xz, .img.gz), or a build's
    /// output directory to write its nodes onto one new card each.
    #[arg(value_name = "IMAGE|OUT_DIR")]
    pub source: PathBuf,

    /// The whole-disk device (or a regular file) to write; needed with an image.
    #[arg(long, short = 'd', value_name = "DEV")]
    pub device: Option<PathBuf>,

    /// The block map to use (default: NODE.img.bmap beside the image).
    #[arg(long, value_name = "FILE", conflicts_with = "no_bmap")]
    pub bmap: Option<PathBuf>,

    /// Write every byte of the image, ignoring a block map beside it.
    #[arg(long)]
    pub no_bmap: bool,

    /// Also write a device that is neither removable nor attached by USB (an internal disk).
    #[arg(long)]
    pub force: bool,

    /// Write without asking (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Root of a simulated /sys, /proc and /dev (tests).
    #[arg(long, hide = true, value_name = "DIR", env = "PIIMAGE_SYS_ROOT")]
    pub sys_root: Option<PathBuf>,

    /// How often to look for a new card, in milliseconds (tests).
    #[arg(long, hide = true, default_value_t = 500)]
    pub poll_ms: u64,
}

impl FlashArgs {
    fn root(&self) -> SysRoot {
        self.sys_root
            .as_deref()
            .map_or_else(SysRoot::real, SysRoot::at)
    }
}

/// Runs `piimage flash`.
pub fn run(args: &FlashArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    if args.source.is_dir() {
        anyhow::ensure!(
            args.device.is_none(),
            "--device is for one image; with a directory, cards are taken as they are inserted"
        );
        return run_batch(args, global);
    }
    let device = args.device.as_deref().context(
        "--device DEV is needed with an image (or give a build's output directory to write \
         each node onto a newly inserted card)",
    )?;
    let root = args.root();
    let node = fl::node_name(&args.source);
    let bmap_path = match (&args.bmap, args.no_bmap) {
        (Some(p), _) => Some(p.clone()),
        (None, false) => fl::bmap_beside(&args.source),
        (None, true) => None,
    };
    let bmap = bmap_path.as_deref().map(fl::load_bmap).transpose()?;
    let image_size = fl::known_size(&args.source, bmap.as_ref())?;
    let target = target::resolve(device, &root)?;
    if let Target::Device(dev) = &target {
        let checks = Checks {
            force: args.force,
            image_size,
        };
        target::check_device(dev, &target::mounts(&root)?, checks)?;
        confirm(args.yes, &node, dev)?;
    }
    let out = fl::open_target(&target)?;
    let bars = Bars::new(global.quiet);
    let what = format!("writing {node}");
    let report = fl::write_and_verify(&args.source, bmap.as_ref(), &target, &out, &what, &bars)?;
    println!(
        "{}",
        final_line(&node, &target.path().display().to_string(), &report)
    );
    Ok(())
}

/// "flashed NODE onto DEV: N bytes written ... in T s".
fn final_line(node: &str, device: &str, r: &FlashReport) -> String {
    let how = if r.with_bmap {
        "mapped ranges, per the .bmap"
    } else {
        "whole image"
    };
    format!(
        "flashed {node} onto {device}: {} bytes written ({how}; image {} bytes, {}), {} bytes verified, in {:.1} s",
        r.written,
        r.image_size,
        r.compression,
        r.verified,
        r.elapsed.as_secs_f64()
    )
}

/// Asks on the terminal before `dev` is overwritten, unless `yes`.
fn confirm(yes: bool, node: &str, dev: &BlockDevice) -> Result<(), FlashError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(FlashError::NotConfirmed(format!(
            "not writing {}: stdin is not a terminal, so piimage cannot ask; check the device and \
             pass --yes",
            dev.describe()
        )));
    }
    eprint!(
        "write {node} onto {}?\nEverything on it will be lost. [y/N] ",
        dev.describe()
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(FlashError::NotConfirmed(format!(
            "not writing {}: not confirmed",
            dev.path.display()
        )))
    }
}

/// The CLI's side of the batch loop.
struct Events {
    yes: bool,
    quiet: bool,
}

impl BatchEvents for Events {
    fn waiting(&self, node: &str, left: usize) {
        if !self.quiet {
            eprintln!(
                "insert a card for {node} ({left} to go; a card already inserted must be taken out and put back; Ctrl-C stops)"
            );
        }
    }

    fn confirm(&self, node: &str, dev: &BlockDevice) -> bool {
        confirm(self.yes, node, dev).is_ok()
    }

    fn failed(&self, node: &str, dev: &BlockDevice, err: &FlashError) {
        eprintln!(
            "{node} was not written onto {}: {}; take the card out",
            dev.path.display(),
            piimage::error::chain(err)
        );
    }

    fn flashed(&self, node: &str, dev: &BlockDevice, report: &FlashReport) {
        println!(
            "{}",
            final_line(node, &dev.path.display().to_string(), report)
        );
        println!(
            "label this card: {node} ({}, serial {})",
            human_size(dev.size),
            if dev.serial.is_empty() {
                "unknown"
            } else {
                &dev.serial
            }
        );
    }
}

fn run_batch(args: &FlashArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.force,
        "--force is for one device; many cards in a row are taken only from removable or USB devices"
    );
    anyhow::ensure!(
        args.yes || std::io::stdin().is_terminal(),
        "stdin is not a terminal, so piimage cannot ask before each card; pass --yes"
    );
    let options = BatchOptions {
        root: args.root(),
        poll: Duration::from_millis(args.poll_ms.max(1)),
    };
    let events = Events {
        yes: args.yes,
        quiet: global.quiet,
    };
    let bars = Bars::new(global.quiet);
    let result = batch::run(&args.source, &options, &bars, &events);
    let log = batch::read_log(&args.source).unwrap_or_default();
    match result {
        Ok(written) => {
            println!(
                "all nodes written: {} in this session, {} in {}",
                written.len(),
                log.len(),
                args.source.join(batch::FLASH_LOG).display()
            );
            Ok(())
        }
        Err(e) if piimage::cancel::is_requested() => {
            eprintln!(
                "stopped: {} cards recorded in {}; run again to continue with the next node",
                log.len(),
                args.source.join(batch::FLASH_LOG).display()
            );
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}
