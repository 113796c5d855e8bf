//! Documentation from the binary: `piimage completions SHELL`, `piimage man [--out DIR]` and
//! `piimage help [recipe|SUBCOMMAND]`. Completions and man pages are generated from the clap
//! definitions (clap_complete, clap_mangen), so they follow every option added; the recipe
//! reference is `recipes/README.md`, compiled into the binary, so an installed piimage carries
//! it.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, GlobalArgs};

/// The recipe reference, as shipped in the repository.
pub const RECIPE_REFERENCE: &str = include_str!("../../recipes/README.md");

/// Arguments of `piimage completions`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  bash:  piimage completions bash > ~/.local/share/bash-completion/completions/piimage
  zsh:   piimage completions zsh > ~/.zfunc/_piimage   (with fpath+=~/.zfunc before compinit)
  fish:  piimage completions fish > ~/.config/fish/completions/piimage.fish")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// Arguments of `piimage man`.
#[derive(Debug, Args)]
#[command(after_help = "\
Without --out, prints piimage(1) (read it with `piimage man | man -l -`). With --out DIR,
writes piimage.1 and one page per subcommand (piimage-build.1, ...) into DIR.")]
pub struct ManArgs {
    /// Write piimage.1 and piimage-SUBCOMMAND.1 into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Arguments of `piimage help`.
#[derive(Debug, Args)]
pub struct HelpArgs {
    /// `recipe` for the recipe reference, or a subcommand for its help.
    #[arg(value_name = "TOPIC")]
    pub topic: Option<String>,
}

/// Runs `piimage completions`.
pub fn run_completions(args: &CompletionsArgs, _global: &GlobalArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "piimage", &mut out);
    out.flush()?;
    Ok(())
}

/// Runs `piimage man`.
pub fn run_man(args: &ManArgs, _global: &GlobalArgs) -> anyhow::Result<()> {
    let cmd = Cli::command();
    match &args.out {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            out.flush()?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            println!("wrote the man pages into {}", dir.display());
        }
    }
    Ok(())
}

/// Runs `piimage help`.
pub fn run_help(args: &HelpArgs, _global: &GlobalArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    match args.topic.as_deref() {
        None => cmd.print_long_help()?,
        Some("recipe" | "recipes") => print!("{RECIPE_REFERENCE}"),
        Some(name) => {
            let names: Vec<String> = cmd
                .get_subcommands()
                .map(|s| s.get_name().to_owned())
                .collect();
            let Some(sub) = cmd.find_subcommand_mut(name) else {
                anyhow::bail!(
                    "help {name}: no such topic; topics: recipe, {}",
                    names.join(", ")
                );
            };
            let mut sub = sub.clone().bin_name(format!("piimage {name}"));
            sub.print_long_help()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_page_names_every_subcommand() {
        let cmd = Cli::command();
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .render(&mut page)
            .unwrap();
        let page = String::from_utf8(page).unwrap();
        for sub in cmd.get_subcommands() {
            assert!(
                page.contains(sub.get_name()),
                "{} missing from the man page",
                sub.get_name()
            );
        }
    }

    #[test]
    fn the_reference_is_the_recipe_readme() {
        assert!(RECIPE_REFERENCE.contains("extends"));
    }
}
