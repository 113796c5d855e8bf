//! The command line: clap derive structs, one file per large subcommand.

pub mod build;
pub mod eeprom;
pub mod flash;
pub mod inspect;
pub mod merge;
pub mod plan;
pub mod progress;
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
#[command(name = "piimage", version, about, long_about = None, after_help = AFTER_HELP)]
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
    /// No progress bars (they are also off when stderr is not a terminal).
    #[arg(long, short, global = true)]
    pub quiet: bool,

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
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
