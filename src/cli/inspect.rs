//! `piimage inspect IMAGE [--json]`.

use anyhow::Context;
use clap::Args;

use piimage::disk::source::{self, BaseSpec};
use piimage::io::hashing::Sha256Digest;

use super::GlobalArgs;
use super::progress::Bars;

/// Arguments of `piimage inspect`.
#[derive(Debug, Args)]
#[command(after_help = "\
IMAGE may be raw (.img) or compressed (.img.xz, .img.gz, .img.zst; detected by content, not
by name). A compressed image is decompressed once into the cache and reused. A URL needs --sha256;
it is downloaded once into the cache and verified.

The --json layout is stable and documented in docs/inspect-json.md (schema_version 1).")]
pub struct InspectArgs {
    /// Image file or http(s) URL.
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// The sha256 the image file (as given, compressed or not) must have; required for URLs.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<Sha256Digest>,

    /// Print the stable JSON report instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `piimage inspect`.
pub fn run(args: &InspectArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let cache = global.cache()?;
    let spec = BaseSpec::parse(&args.image, args.sha256)?;
    let bars = Bars::new(global.quiet);
    let base = source::resolve(&spec, &cache, &bars)?;
    let mut report =
        piimage::inspect::inspect(&base.raw_path).with_context(|| base.origin.clone())?;
    report.image.origin = base.origin.clone();
    report.image.compression = base.compression.to_string();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}
