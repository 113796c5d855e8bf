//! `piimage build RECIPE [--base PATH] [--out DIR] [--jobs N] [--node NAME]... [--shard K/N]
//! [--base-url URL]`.

use anyhow::Context;
use clap::Args;

use piimage::build::{BuildOptions, BuildReport, Shard, build};
use piimage::output::manifest::BaseUrl;
use piimage::recipe::ResolvedRecipe;

use super::color::{Paint, Stream, Style};
use super::progress::Bars;
use super::{GlobalArgs, RecipeArgs};

/// Arguments of `piimage build`.
#[derive(Debug, Args)]
#[command(after_help = "\
Validates the recipe, fetches the base image once (cached, sha256-checked), checks the recipe
against it (time zone, locale, keyboard layout, dtoverlay= files), plans every node, then writes one image per node by editing the partitions inside a copy-on-write view of the
base: no root, no mount, no loop device. Outputs appear under their final names only when
complete. Each node's record goes to records/ in the output directory, and SHA256SUMS, hosts,
known_hosts, ssh_config, inventory.yaml (and the Imager manifest) are rendered from every record
there, so builds of several recipes, --node builds and shards into one directory add up
(`piimage merge` combines shard directories). Without a network, point --base at a local image
(for example a test fixture built by `cargo xtask fixtures`). --quiet hides the progress bars
only; the summary still goes to stdout (--json prints it as JSON, the layout is in
docs/cli-json.md in the source).")]
pub struct BuildArgs {
    /// The recipe and base override.
    #[command(flatten)]
    pub recipe: RecipeArgs,

    /// Output directory (default: the recipe's `output.dir`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,

    /// Nodes built in parallel (default: one per core).
    #[arg(long, short, value_name = "N", default_value_t = 0)]
    pub jobs: usize,

    /// Build only this node (repeatable).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,

    /// Build only the K-th of N shares of the nodes (node i goes to share i mod N + 1), e.g.
    /// one per job of a CI matrix; `piimage merge` combines the directories.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,

    /// URL the images will be served from, for the Imager manifest (default: the recipe's
    /// `output.base_url`; without one, URLs are relative to the manifest).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<BaseUrl>,

    /// Print what was written as one JSON object (`"version": 1`) instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs `piimage build`.
pub fn run(args: &BuildArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let resolved = args.recipe.load(false)?;
    super::check_node_names(&resolved, &args.nodes)?;
    let cache = global.cache()?;
    let bars = Bars::new(global.quiet);
    let opts = BuildOptions {
        jobs: args.jobs,
        out_dir: args.out.clone(),
        only: args.nodes.clone(),
        shard: args.shard,
        base_url: args.base_url.clone(),
    };
    let report = build(&resolved, &cache, &opts, &bars)
        .with_context(|| format!("building {}", args.recipe.recipe.display()))?;
    if args.json {
        return super::json::print(&report_json(&report, &resolved));
    }
    let paint = Paint::new(global.color, Stream::Stderr);
    for w in &report.warnings {
        eprintln!("{} {w}", paint.paint(Style::BoldYellow, "warning:"));
    }
    println!(
        "wrote {} node image(s) to {}",
        report.nodes.len(),
        report.dir.display()
    );
    for n in &report.nodes {
        for f in &n.files {
            let name = super::file_name(&f.path);
            println!("  {name:<40} {:>12} bytes  sha256 {}", f.size, f.sha256);
        }
    }
    for f in &report.cluster_files {
        println!("  {}", super::file_name(f));
    }
    Ok(())
}

/// The build report as JSON (layout in `docs/cli-json.md`). File names are relative to `dir`.
fn report_json(report: &BuildReport, recipe: &ResolvedRecipe) -> serde_json::Value {
    use serde_json::json;
    // The report names each node by its output file stem, which tells built nodes apart.
    let node_of_stem = |stem: &str| {
        recipe
            .nodes
            .iter()
            .find(|n| recipe.output.file_stem(&recipe.cluster.name, n) == stem)
            .map(|n| n.name.clone())
    };
    let nodes: Vec<serde_json::Value> = report
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": node_of_stem(&n.name),
                "stem": n.name,
                "image_size": n.image_size,
                "image_sha256": n.image_sha256.map(|d| d.to_string()),
                "files": n.files.iter().map(|f| json!({
                    "name": super::file_name(&f.path),
                    "size": f.size,
                    "sha256": f.sha256.to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    super::json::ok(
        "build",
        json!({
            "dir": report.dir.display().to_string(),
            "nodes": nodes,
            "cluster_files": report.cluster_files.iter().map(|f| super::file_name(f)).collect::<Vec<_>>(),
            "warnings": report.warnings,
        }),
    )
}
