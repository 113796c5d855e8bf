//! `piimage plan RECIPE [--base PATH] [--node NAME]...`: what a build would write, per node,
//! without writing any image.

use std::fmt::Write as _;

use clap::Args;

use piimage::build::{Prepared, PreparedBase, prepare};
use piimage::disk::Storage;
use piimage::inspect::human_bytes;
use piimage::plan::preview::{BaseFiles, changed_lines, exposed_on_boot, exposed_warning, fold};

use super::color::{Paint, Stream, Style};
use super::progress::Bars;
use super::{GlobalArgs, RecipeArgs};

/// Arguments of `piimage plan`.
#[derive(Debug, Args)]
#[command(after_help = "\
The recipe is first checked against the base image (time zone, locale, keyboard layout,
dtoverlay= files), as build does. Then, for every node: each file the build would write,
change, link or remove (partition, path, mode, owner, size), and a diff for every edit of an
existing text file (cmdline.txt's diff shows its final line; password hashes, Wi-Fi PSKs,
passwords, tokens and private keys are shown as markers that change when they do). The base image is
resolved (downloaded or decompressed into the cache if needed) and read, never written; no
output is produced. Without a recipe seed, generated keys and hashes differ between runs.
Diffs are coloured on a terminal (--color, NO_COLOR); --json prints the plan as one JSON
object (`\"version\": 1`, the layout is in docs/cli-json.md in the source).")]
pub struct PlanArgs {
    /// The recipe and base override.
    #[command(flatten)]
    pub recipe: RecipeArgs,

    /// Plan only this node (repeatable).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,

    /// Print the plan as one JSON object (`"version": 1`) instead of text.
    #[arg(long)]
    pub json: bool,
}

fn diff(lines: &[(char, Option<String>)], paint: Paint, out: &mut String) {
    for (sign, line) in lines {
        let text = match line {
            Some(l) => format!("      {sign} {l}"),
            None => "      ...".to_owned(),
        };
        let text = match (sign, line) {
            ('-', _) => paint.paint(Style::Red, &text),
            ('+', _) => paint.paint(Style::Green, &text),
            (_, None) => paint.paint(Style::Cyan, &text),
            _ => text,
        };
        out.push_str(&text);
        out.push('\n');
    }
}

/// Runs `piimage plan`.
pub fn run(args: &PlanArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let resolved = args.recipe.load(false)?;
    super::check_node_names(&resolved, &args.nodes)?;
    let cache = global.cache()?;
    let Prepared { base, plans, .. } = prepare(
        &resolved,
        &cache,
        &args.nodes,
        None,
        &Bars::new(global.quiet),
    )?;
    if args.json {
        let files = BaseFiles::new(base.root_reader()?, base.boot_reader()?);
        return super::json::print(&plan_json(&base, &plans, &files));
    }
    let paint = Paint::new(global.color, Stream::Stdout);
    if let Some(g) = &base.growth {
        println!(
            "image grown to {} (output.size): root partition {} from {} to {}, ext4 from {} to {} blocks\n",
            human_bytes(base.storage.len()),
            g.partition,
            human_bytes(g.old_len),
            human_bytes(g.new_len),
            g.ext4.old_blocks,
            g.ext4.new_blocks,
        );
    }
    for w in &base.layout.table.warnings {
        println!("{} {w}\n", paint.paint(Style::BoldYellow, "warning:"));
    }
    let files = BaseFiles::new(base.root_reader()?, base.boot_reader()?);
    for p in &plans {
        println!(
            "node {} ({} operations){}",
            p.name,
            p.ops.len(),
            p.disk_id
                .map(|d| format!(", disk id {d:08x}"))
                .unwrap_or_default()
        );
        let mut text = String::new();
        let touched = fold(&p.ops, &files);
        for t in &touched {
            let _ = writeln!(text, "  {:<8}{}:{}  {}", t.action, t.part, t.path, t.detail);
            if let Some(lines) = changed_lines(t, &p.secret_values) {
                diff(&lines, paint, &mut text);
            }
        }
        for path in exposed_on_boot(&touched, &p.secret_values) {
            let _ = writeln!(
                text,
                "  {} {}",
                paint.paint(Style::BoldYellow, "warning:"),
                exposed_warning(&path)
            );
        }
        println!("{text}");
    }
    Ok(())
}

/// The plan as JSON (layout in `docs/cli-json.md`).
fn plan_json(
    base: &PreparedBase,
    plans: &[piimage::plan::node::NodePlan],
    files: &BaseFiles,
) -> serde_json::Value {
    use serde_json::json;
    let growth = base.growth.as_ref().map(|g| {
        json!({
            "size": base.storage.len(),
            "partition": g.partition,
            "old_partition_size": g.old_len,
            "new_partition_size": g.new_len,
            "old_ext4_blocks": g.ext4.old_blocks,
            "new_ext4_blocks": g.ext4.new_blocks,
        })
    });
    let nodes: Vec<serde_json::Value> = plans
        .iter()
        .map(|p| {
            let touched = fold(&p.ops, files);
            let warnings: Vec<String> = exposed_on_boot(&touched, &p.secret_values)
                .iter()
                .map(|path| exposed_warning(path))
                .collect();
            let files: Vec<serde_json::Value> = touched
                .iter()
                .map(|t| {
                    let diff = changed_lines(t, &p.secret_values).map(|lines| {
                        lines
                            .into_iter()
                            .map(|(sign, line)| match line {
                                Some(l) => format!("{sign} {l}"),
                                None => "...".to_owned(),
                            })
                            .collect::<Vec<_>>()
                    });
                    json!({
                        "action": t.action,
                        "partition": t.part.to_string(),
                        "path": t.path,
                        "detail": t.detail,
                        "diff": diff,
                    })
                })
                .collect();
            json!({
                "name": p.name,
                "operations": p.ops.len(),
                "disk_id": p.disk_id.map(|d| format!("{d:08x}")),
                "files": files,
                "warnings": warnings,
            })
        })
        .collect();
    super::json::ok(
        "plan",
        json!({
            "growth": growth,
            "warnings": base.layout.table.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "nodes": nodes,
        }),
    )
}
