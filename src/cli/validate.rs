//! `piimage validate RECIPE [--base PATH] [--skip-secrets]`.
//!
//! Without `--base`, nothing but the recipe is read. With `--base IMAGE`, the image is opened
//! read-only (a compressed one is decompressed into the cache, as `plan` does) and the checks
//! that need it run too: what [`piimage::build::check_image`] checks and, unless
//! `--skip-secrets`, every node's plan (groups, shells, units, owners), with nothing written.

use std::fmt::Write as _;

use clap::Args;

use piimage::build::{check_image, prepare, prepare_base};
use piimage::disk::source::{self, BaseSpec};
use piimage::recipe::{self, LoadOptions, NodeSpec, ResolvedRecipe};

use super::progress::Bars;
use super::{GlobalArgs, RecipeArgs};

/// Arguments of `piimage validate`.
#[derive(Debug, Args)]
#[command(after_help = "\
Checks everything that can be checked without an image: YAML syntax and field names, node
names and addresses, users, password hashes, SSH keys, networks, overlay trees and their
templates (rendered for every node). No image is opened or downloaded and nothing is written.
With --base IMAGE, also what only the image knows: the time zone, locale and keyboard layout
exist in it, every dtoverlay= has its .dtbo on the boot partition, and (unless
--skip-secrets) every node plans: groups, shells and units exist. The image is only read.
Each problem is reported as FILE:LINE:COLUMN: FIELD: MESSAGE. The recipe format is documented
by `piimage help recipe`; --json prints the summary (or the problems) as JSON, see
`piimage help validate` and docs/cli-json.md in the source.")]
pub struct ValidateArgs {
    /// The recipe and base override.
    #[command(flatten)]
    pub recipe: RecipeArgs,

    /// Do not check that password, Wi-Fi passphrase and seed files or environment variables
    /// exist (for checking a recipe where its secrets are not available).
    #[arg(long)]
    pub skip_secrets: bool,

    /// Print the result (or the problems) as one JSON object (`"version": 1`).
    #[arg(long)]
    pub json: bool,
}

/// Runs `piimage validate`.
pub fn run(args: &ValidateArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let options = LoadOptions {
        base: args.recipe.base.clone(),
        skip_secrets: args.skip_secrets,
    };
    let resolved = recipe::load(&args.recipe.recipe, &options)?;
    let mut checked = None;
    if args.recipe.base.is_some() {
        let cache = global.cache()?;
        let bars = Bars::new(global.quiet);
        if args.skip_secrets {
            let image = source::resolve(&resolved.base, &cache, &bars)?;
            let base = prepare_base(&image.raw_path)?;
            if let Some(device) = resolved.output.device_size {
                base.check_fits(device)?;
            }
            check_image(&resolved, &base, &[])?;
            checked = Some("time zone, locale, keyboard and dtoverlay files");
        } else {
            // As build prepares it: grown to output.size, every node planned.
            prepare(&resolved, &cache, &[], None, &bars)?;
            checked = Some("time zone, locale, keyboard and dtoverlay files; every node planned");
        }
    }
    if args.json {
        return super::json::print(&summary_json(&resolved, checked));
    }
    let mut text = summary(&resolved);
    if let Some(what) = checked {
        let ok = text.rfind("ok: ").unwrap_or(text.len());
        text.insert_str(ok, &format!("image    checked against the base: {what}\n"));
    }
    print!("{text}");
    Ok(())
}

/// The short human summary `validate` prints.
pub fn summary(r: &ResolvedRecipe) -> String {
    let mut s = String::new();
    let chain: Vec<String> = r.chain.iter().map(|p| p.display().to_string()).collect();
    let _ = writeln!(s, "recipe   {}", chain.join(" <- "));
    let domain = r
        .cluster
        .domain
        .as_ref()
        .map(|d| format!(" (domain {d})"))
        .unwrap_or_default();
    let _ = writeln!(s, "cluster  {}{domain}", r.cluster.name);
    if let Some(d) = &r.cluster.description {
        let _ = writeln!(s, "         {}", d.trim());
    }
    let base = match &r.base {
        BaseSpec::Url { url, sha256 } => format!("{url}\n         sha256 {sha256}"),
        BaseSpec::Path { path, .. } => path.display().to_string(),
    };
    let over = if r.base_overridden { " (--base)" } else { "" };
    let _ = writeln!(s, "base     {base}{over}");
    let formats: Vec<String> = r.output.formats.iter().map(ToString::to_string).collect();
    let size = r
        .output
        .size
        .map(|b| format!(", grown to {} MiB", b >> 20))
        .unwrap_or_default();
    let device = r
        .output
        .device_size
        .map(|b| format!(" of at least {b} bytes"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "output   {}/{}.{{{}}} for {}{device}{size}",
        r.output.dir.display(),
        r.output.name,
        formats.join(","),
        r.output.medium
    );
    let built = r.selected().count();
    let _ = writeln!(
        s,
        "nodes    {} ({built} built by this recipe, marked *):",
        r.nodes.len()
    );
    let width = r.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    for n in &r.nodes {
        let _ = writeln!(s, "{}", node_line(n, width));
    }
    s.push_str("ok: the recipe is valid (nothing was built)\n");
    s
}

/// The summary as JSON (layout in `docs/cli-json.md`).
pub fn summary_json(r: &ResolvedRecipe, checked: Option<&str>) -> serde_json::Value {
    use serde_json::json;
    let base = match &r.base {
        BaseSpec::Url { url, sha256 } => json!({ "url": url, "sha256": sha256.to_string() }),
        BaseSpec::Path { path, .. } => json!({ "path": path.display().to_string() }),
    };
    let nodes: Vec<serde_json::Value> = r
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "hostname": n.hostname,
                "fqdn": n.fqdn,
                "role": n.role,
                "address": n.address.map(|a| a.to_string()),
                "access_address": n.access_address.map(|a| a.to_string()),
                "selected": n.selected,
                "users": n.users.iter().map(|u| u.name.clone()).collect::<Vec<_>>(),
                "route_via": n.network.route_via,
            })
        })
        .collect();
    super::json::ok(
        "validate",
        json!({
            "recipe": r.chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "cluster": {
                "name": r.cluster.name,
                "domain": r.cluster.domain,
                "description": r.cluster.description.as_deref().map(str::trim),
            },
            "base": base,
            "base_overridden": r.base_overridden,
            "image_checked": checked,
            "output": {
                "dir": r.output.dir.display().to_string(),
                "name": r.output.name,
                "formats": r.output.formats.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "medium": r.output.medium.to_string(),
                "size": r.output.size,
                "device_size": r.output.device_size,
            },
            "nodes": nodes,
        }),
    )
}

fn node_line(n: &NodeSpec, width: usize) -> String {
    let mark = if n.selected { '*' } else { ' ' };
    let address = n
        .address
        .map_or_else(|| "(dhcp)".to_owned(), |a| a.to_string());
    let users: Vec<&str> = n.users.iter().map(|u| u.name.as_str()).collect();
    let users = if users.is_empty() {
        String::new()
    } else {
        format!("  users: {}", users.join(", "))
    };
    let access = n
        .access_address
        .map(|a| format!("  reached at {a}"))
        .unwrap_or_default();
    let users = format!("{users}{access}");
    let via = n
        .network
        .route_via
        .as_ref()
        .map(|v| format!("  via {v}"))
        .unwrap_or_default();
    format!(
        "  {mark} {:width$}  {address:18}  {:10}{users}{via}",
        n.name, n.role
    )
}
