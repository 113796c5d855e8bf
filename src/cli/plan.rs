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
use piimage::plan::redact::redact;

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
output is produced. Without a recipe seed, generated keys and hashes differ between runs.")]
pub struct PlanArgs {
    /// The recipe and base override.
    #[command(flatten)]
    pub recipe: RecipeArgs,

    /// Plan only this node (repeatable).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
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

fn diff(old: &str, new: &str, out: &mut String) {
    let d = similar::TextDiff::from_lines(old, new);
    for group in d.grouped_ops(1) {
        for op in group {
            for change in d.iter_changes(&op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                let line = change.value();
                let _ = write!(out, "      {sign} {}", line);
                if !line.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        out.push_str("      ...\n");
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
    let cache = global.cache()?;
    let base_image = source::resolve(&resolved.base, &cache, &Bars::new(global.quiet))?;
    let mut base = prepare_base(&base_image.raw_path)?;
    if let Some(size) = resolved.output.size {
        base = base.grow(size)?;
    }
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
        println!("warning: {w}\n");
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
            if let (Some(before), Some(after)) = (&t.before, &t.after)
                && before != after
            {
                // Secrets are shown as markers that change when they do (see plan::redact).
                let (before, after) = (redact(&t.path, before), redact(&t.path, after));
                diff(&before, &after, &mut text);
            }
        }
        println!("{text}");
    }
    Ok(())
}
