//! `piimage plan RECIPE [--base PATH] [--node NAME]...`: what a build would write, per node,
//! without writing any image.

use std::fmt::Write as _;
use std::sync::Arc;

use clap::Args;

use piimage::build::{PreparedBase, plan_all, prepare_base, seed_bytes};
use piimage::disk::source;
use piimage::disk::{Storage, Window};
use piimage::fs::ext4::Ext4Reader;
use piimage::fs::fat::FatReader;
use piimage::inspect::human_bytes;
use piimage::ops::{FileOp, Part, apply_text_edit};
use piimage::plan::redact::redact_known;

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

/// Reads text files of the base, as the plan's edits see them.
struct BaseFiles {
    root: Option<Ext4Reader>,
    boot: Option<FatReader<Window<Arc<dyn piimage::disk::Storage>>>>,
}

impl BaseFiles {
    fn open(base: &PreparedBase) -> anyhow::Result<Self> {
        let root = match &base.layout.root {
            Some(p) => Some(Ext4Reader::open(Window::new(
                Arc::clone(&base.storage),
                p.offset(),
                p.len(),
            )?)?),
            None => None,
        };
        let boot = match &base.layout.boot {
            Some(p) => Some(FatReader::open(Window::new(
                Arc::clone(&base.storage),
                p.offset(),
                p.len(),
            )?)?),
            None => None,
        };
        Ok(Self { root, boot })
    }

    fn read(&self, part: Part, path: &str) -> Option<String> {
        let bytes = match part {
            Part::Root => self.root.as_ref()?.read(path).ok()??,
            Part::Boot => self.boot.as_ref()?.read(path).ok()??,
        };
        String::from_utf8(bytes).ok()
    }
}

/// The changed lines of `old` -> `new` with one line of context, as (sign, line) pairs; a
/// `...` entry (sign `' '`, no line) ends each hunk. Lines lose their final newline.
fn diff_lines(old: &str, new: &str) -> Vec<(char, Option<String>)> {
    let d = similar::TextDiff::from_lines(old, new);
    let mut out = Vec::new();
    for group in d.grouped_ops(1) {
        for op in group {
            for change in d.iter_changes(&op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                let line = change.value();
                let line = line.strip_suffix('\n').unwrap_or(line);
                out.push((sign, Some(line.to_owned())));
            }
        }
        out.push((' ', None));
    }
    out
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

/// The net effect of a node's operations on one path.
struct Touched {
    part: Part,
    path: String,
    /// What happens to it last (`write`, `edit`, `mkdir`, `symlink`, `remove`, `chown`).
    action: &'static str,
    /// Mode, owner, size or link target.
    detail: String,
    /// Text before the first operation (from the base), when it is text.
    before: Option<String>,
    /// Text after the last operation, when it is text.
    after: Option<String>,
}

/// Folds the operations into one entry per path, in the order paths are first touched.
fn fold(ops: &[FileOp], files: &BaseFiles) -> Vec<Touched> {
    let mut out: Vec<Touched> = Vec::new();
    for op in ops {
        let (part, path) = (op.part(), op.path().to_owned());
        let i = match out.iter().position(|t| t.part == part && t.path == path) {
            Some(i) => i,
            None => {
                let before = files.read(part, &path);
                out.push(Touched {
                    part,
                    path: path.clone(),
                    action: "",
                    detail: String::new(),
                    after: before.clone(),
                    before,
                });
                out.len() - 1
            }
        };
        let t = &mut out[i];
        match op {
            FileOp::Write { data, owner, .. } => {
                t.action = "write";
                t.detail = format!(
                    "{:04o} {}:{}  {} bytes",
                    owner.mode,
                    owner.uid,
                    owner.gid,
                    data.len()
                );
                t.after = String::from_utf8(data.clone()).ok();
            }
            FileOp::Append { data, .. } => {
                t.action = if t.action.is_empty() {
                    "append"
                } else {
                    t.action
                };
                let mut text = t.after.clone().unwrap_or_default();
                text.push_str(&String::from_utf8_lossy(data));
                t.after = Some(text);
            }
            FileOp::Mkdir { owner, .. } => {
                t.action = "mkdir";
                t.detail = format!("{:04o} {}:{}", owner.mode, owner.uid, owner.gid);
            }
            FileOp::Symlink {
                target, uid, gid, ..
            } => {
                t.action = "symlink";
                t.detail = format!("-> {target}  {uid}:{gid}");
                t.after = None;
            }
            FileOp::Remove { .. } => {
                t.action = "remove";
                t.detail.clear();
                t.after = None;
            }
            FileOp::SetOwner { owner, .. } => {
                if t.action.is_empty() {
                    t.action = "chown";
                }
                t.detail = format!("{:04o} {}:{}", owner.mode, owner.uid, owner.gid);
            }
            FileOp::Edit { edit, .. } => {
                if t.action.is_empty() {
                    t.action = "edit";
                }
                let old = t.after.clone().unwrap_or_default();
                match apply_text_edit(&old, edit) {
                    Ok(new) => {
                        t.detail = format!("{} bytes", new.len());
                        t.after = Some(new);
                    }
                    Err(e) => t.detail = format!("fails: {e}"),
                }
            }
        }
    }
    out
}

/// Runs `piimage plan`.
pub fn run(args: &PlanArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let resolved = args.recipe.load(false)?;
    super::check_node_names(&resolved, &args.nodes)?;
    let cache = global.cache()?;
    let base_image = source::resolve(&resolved.base, &cache, &Bars::new(global.quiet))?;
    let mut base = prepare_base(&base_image.raw_path)?;
    if let Some(size) = resolved.output.size {
        base = base.grow(size)?;
    }
    if args.json {
        let seed = seed_bytes(&resolved)?;
        let plans = plan_all(&resolved, &base, &seed, &args.nodes, None)?;
        let files = BaseFiles::open(&base)?;
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
    let seed = seed_bytes(&resolved)?;
    let plans = plan_all(&resolved, &base, &seed, &args.nodes, None)?;
    let files = BaseFiles::open(&base)?;
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
        for t in fold(&p.ops, &files) {
            let _ = writeln!(text, "  {:<8}{}:{}  {}", t.action, t.part, t.path, t.detail);
            if let Some(lines) = changed_lines(&t, &p.secret_values) {
                diff(&lines, paint, &mut text);
            }
        }
        println!("{text}");
    }
    Ok(())
}

/// The diff of an edited text file, secrets shown as markers that change when they do (see
/// plan::redact); `None` when there is nothing to compare.
fn changed_lines(t: &Touched, known: &[(String, String)]) -> Option<Vec<(char, Option<String>)>> {
    let (Some(before), Some(after)) = (&t.before, &t.after) else {
        return None;
    };
    if before == after {
        return None;
    }
    let (before, after) = (
        redact_known(&t.path, before, known),
        redact_known(&t.path, after, known),
    );
    Some(diff_lines(&before, &after))
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
            let files: Vec<serde_json::Value> = fold(&p.ops, files)
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
