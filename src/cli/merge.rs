//! `piimage merge DIR... [--out DIR] [--base-url URL]` and `piimage localize DIR`.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use serde_json::json;

use piimage::cluster::RenderOptions;
use piimage::cluster::merge::merge;
use piimage::output::manifest::BaseUrl;

use super::GlobalArgs;

/// Arguments of `piimage merge`.
#[derive(Debug, Args)]
#[command(after_help = "\
Reads records/ of every DIR (written by piimage build), refuses records of another cluster or
seed and nodes built twice differently, copies each built node's files and record into --out,
and renders SHA256SUMS, hosts, known_hosts, ssh_config, inventory.yaml and the Imager manifest
from all of them, as one build of every node would. With one DIR and no --out, the directory
is completed in place (e.g. after downloading every shard's artifact into it).")]
pub struct MergeArgs {
    /// Output directories of builds (shards) of one cluster, built from one seed.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,

    /// Directory to merge into (needed with more than one DIR; may be one of them).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// URL the images will be served from, for the Imager manifest (without one, URLs are
    /// relative to the manifest).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<BaseUrl>,

    /// Print the result as one JSON object on stdout (layout in docs/cli-json.md in the
    /// source); errors too.
    #[arg(long)]
    pub json: bool,
}

/// Runs `piimage merge`.
pub fn run(args: &MergeArgs, _global: &GlobalArgs) -> anyhow::Result<()> {
    let out = match (&args.out, args.dirs.as_slice()) {
        (Some(o), _) => o.clone(),
        (None, [one]) => one.clone(),
        (None, _) => bail!("merging {} directories needs --out DIR", args.dirs.len()),
    };
    let opts = RenderOptions {
        base_url: args.base_url.clone(),
    };
    let report = merge(&args.dirs, &out, &opts)?;
    if args.json {
        return super::json::print(&super::json::ok(
            "merge",
            json!({
                "dir": report.dir.display().to_string(),
                "nodes": report.built,
                "copied": report.copied.iter().map(|f| relative(&report.dir, f)).collect::<Vec<_>>(),
                "cluster_files": report
                    .cluster_files
                    .iter()
                    .map(|f| relative(&report.dir, f))
                    .collect::<Vec<_>>(),
            }),
        ));
    }
    println!(
        "merged {} node image(s) into {} ({} file(s) copied)",
        report.built.len(),
        report.dir.display(),
        report.copied.len()
    );
    for f in &report.cluster_files {
        println!("  {}", super::file_name(f));
    }
    Ok(())
}

/// Arguments of `piimage localize`.
#[derive(Debug, Args)]
#[command(after_help = "\
The files a build writes name no path of the building machine, so the directory can be moved
or downloaded. Where it ends up, this writes the two files that need its absolute path:
ssh_config.local (`ssh -F DIR/ssh_config.local NODE` from any directory, or `Include` it from
~/.ssh/config) and CLUSTER.local.rpi-imager-manifest (file:// URLs, for Raspberry Pi Imager:
rpi-imager --repo FILE). Run it again after moving the directory.")]
pub struct LocalizeArgs {
    /// An output directory of piimage build or merge.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Print the files written as one JSON object on stdout (layout in docs/cli-json.md in the
    /// source); errors too.
    #[arg(long)]
    pub json: bool,
}

/// Runs `piimage localize`.
pub fn run_localize(args: &LocalizeArgs, _global: &GlobalArgs) -> anyhow::Result<()> {
    let files = piimage::cluster::localize(&args.dir)?;
    if args.json {
        // Absolute paths: what localize writes is for this place only.
        return super::json::print(&super::json::ok(
            "localize",
            json!({
                "dir": args.dir.display().to_string(),
                "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            }),
        ));
    }
    for f in &files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

/// `path` relative to `dir` (a file the command wrote there), else as it is.
fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}
