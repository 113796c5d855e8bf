//! The command line: clap derive structs, one file per large subcommand.

pub mod build;
pub mod color;
pub mod docs;
pub mod eeprom;
pub mod flash;
pub mod init;
pub mod inspect;
pub mod json;
pub mod merge;
pub mod plan;
pub mod progress;
pub mod schema;
pub mod validate;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Exit code for errors in the work itself (bad image, bad recipe, I/O).
pub const EXIT_FAILURE: i32 = 1;

const AFTER_HELP: &str = "\
Exit status: 0 on success, 1 on error, 2 on a usage error.

Images are read without root, loop devices or mounts. Base images are never modified;
compressed and downloaded images are kept in the cache ($XDG_CACHE_HOME/piimage, else
~/.cache/piimage, or --cache-dir).";

/// Build customised Raspberry Pi cluster node images from official images, without root.
#[derive(Debug, Parser)]
#[command(
    name = "piimage",
    version,
    about,
    long_about = None,
    after_help = AFTER_HELP,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// No progress bars (they are also off when stderr is not a terminal); summaries still
    /// go to stdout.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Colour in plan diffs and error messages: `auto` (on a terminal, unless NO_COLOR is
    /// set), `always` or `never`.
    #[arg(long, global = true, value_name = "WHEN", default_value_t = color::ColorChoice::Auto)]
    pub color: color::ColorChoice,

    /// Cache directory for downloads and decompressed base images.
    #[arg(long, global = true, value_name = "DIR", env = "PIIMAGE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe an image: partitions, boot and root filesystems, OS, users, first-boot mechanism.
    Inspect(inspect::InspectArgs),
    /// Build one image per node from a recipe.
    Build(build::BuildArgs),
    /// Show every file a build would write, per node, with diffs, without writing an image.
    Plan(plan::PlanArgs),
    /// Check a recipe (and, with --base, what only the image knows); print a summary.
    Validate(validate::ValidateArgs),
    /// Combine the output directories of several builds (e.g. CI shards) into one.
    Merge(merge::MergeArgs),
    /// Write ssh_config.local and an Imager manifest with the absolute paths of a moved or
    /// downloaded output directory.
    Localize(merge::LocalizeArgs),
    /// Write a node image onto a card or disk (only the blocks its .bmap maps), then verify;
    /// or, given an output directory, every node onto one newly inserted card each.
    Flash(flash::FlashArgs),
    /// Make a one-time bootloader-update card (EEPROM boot order) from the base image's own
    /// rpi-eeprom files.
    Eeprom(eeprom::EepromArgs),
    /// Write a commented starter recipe that `piimage validate` accepts.
    Init(init::InitArgs),
    /// Print the JSON Schema of recipes (for editors and CI checks).
    Schema(schema::SchemaArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the man page, or write one page per subcommand into a directory.
    Man(docs::ManArgs),
    /// Print the help of a subcommand, or the recipe reference (`piimage help recipe`).
    Help(docs::HelpArgs),
}

impl Command {
    /// The subcommand's name when it was asked for JSON output (its errors are then JSON too).
    pub fn json(&self) -> Option<&'static str> {
        match self {
            Self::Validate(a) if a.json => Some("validate"),
            Self::Plan(a) if a.json => Some("plan"),
            Self::Build(a) if a.json => Some("build"),
            Self::Merge(a) if a.json => Some("merge"),
            Self::Localize(a) if a.json => Some("localize"),
            _ => None,
        }
    }
}

/// The file name of `path`, for listings.
pub fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

/// Arguments of the recipe subcommands.
#[derive(Debug, Args)]
pub struct RecipeArgs {
    /// The recipe (YAML).
    #[arg(value_name = "RECIPE")]
    pub recipe: PathBuf,

    /// Use this base image instead of the recipe's `base` (e.g. a local copy, or a test
    /// fixture when there is no network).
    #[arg(long, value_name = "PATH")]
    pub base: Option<PathBuf>,
}

impl GlobalArgs {
    /// The cache: `--cache-dir`, else `$XDG_CACHE_HOME/piimage` or `~/.cache/piimage`.
    pub fn cache(&self) -> anyhow::Result<piimage::disk::source::Cache> {
        Ok(match &self.cache_dir {
            Some(dir) => piimage::disk::source::Cache::at(dir),
            None => piimage::disk::source::Cache::from_env()?,
        })
    }
}

/// Refuses `--node` names the recipe does not have, listing the ones it has (and the closest
/// one), before any image is opened.
pub fn check_node_names(
    recipe: &piimage::recipe::ResolvedRecipe,
    names: &[String],
) -> anyhow::Result<()> {
    for name in names {
        if recipe.node(name).is_some() {
            continue;
        }
        let known: Vec<&str> = recipe.nodes.iter().map(|n| n.name.as_str()).collect();
        let closest = closest_name(name, &known)
            .map(|k| format!(" (did you mean {k}?)"))
            .unwrap_or_default();
        anyhow::bail!(
            "--node {name}: the recipe has no such node{closest}; its nodes are: {}",
            known.join(", ")
        );
    }
    Ok(())
}

/// The known name `name` was most likely meant as: the same prefix and number
/// (`worker-9` for `worker-09`); for a number no node of that prefix has, none; else the
/// nearest by edit distance (at most 2 edits).
fn closest_name<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    fn split(s: &str) -> (&str, Option<u64>) {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (prefix, number) = s.split_at(s.len() - digits);
        (prefix, number.parse().ok())
    }
    let (prefix, number) = split(name);
    if number.is_some()
        && let Some(k) = known.iter().find(|k| split(k) == (prefix, number))
    {
        return Some(k);
    }
    if number.is_some()
        && known
            .iter()
            .any(|k| split(k).0 == prefix && split(k).1.is_some())
    {
        // A number out of a range's span: the list of names says more than a guess.
        return None;
    }
    known
        .iter()
        .map(|k| (strsim::levenshtein(name, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

impl RecipeArgs {
    /// Loads and validates the recipe, with `--base` applied.
    pub fn load(&self, skip_secrets: bool) -> anyhow::Result<piimage::recipe::ResolvedRecipe> {
        let options = piimage::recipe::LoadOptions {
            base: self.base.clone(),
            skip_secrets,
        };
        Ok(piimage::recipe::load(&self.recipe, &options)?)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn closest_names() {
        let known = ["gw", "worker-01", "worker-02", "worker-10"];
        let cases = [
            ("number without padding", "worker-1", Some("worker-01")),
            ("number with other padding", "worker-010", Some("worker-10")),
            ("typo", "wroker-02", Some("worker-02")),
            ("number out of the range", "worker-9", None),
            ("nothing near", "database", None),
        ];
        for (what, name, want) in cases {
            assert_eq!(closest_name(name, &known), want, "{what}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
