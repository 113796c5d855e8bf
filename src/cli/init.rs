//! `piimage init [--out FILE] [--nodes N] [--name NAME] [--base URL|PATH] [--sha256 HEX]
//! [--key PUBKEY]`: a commented starter recipe.
//!
//! The recipe is written to a hidden temporary file beside `FILE`, loaded and validated as
//! `piimage validate` would (secrets included), and only then given its name, without replacing
//! a file that exists; so what `init` leaves behind always validates.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use piimage::io::hashing::Sha256Digest;
use piimage::recipe::{self, LoadOptions};

use super::GlobalArgs;

/// The official image the starter recipe names when `--base` is not given (the one the shipped
/// `recipes/cluster.yaml` uses; a unit test keeps them the same).
const DEFAULT_URL: &str = "https://downloads.raspberrypi.com/raspios_lite_arm64/images/raspios_lite_arm64-2026-06-19/2026-06-18-raspios-trixie-arm64-lite.img.xz";
const DEFAULT_SHA256: &str = "acff736ca7945e3b305f07cda4abdb870910e12634991da69783611756e381b3";

/// Arguments of `piimage init`.
#[derive(Debug, Args)]
#[command(after_help = "\
Writes a starter recipe: one user `admin` with sudo and your SSH key, the given number of nodes
on DHCP (a commented example shows static addresses), generated host keys and the cluster
files. The file is validated before it is written and an existing file is never replaced.
Then: `piimage validate FILE`, `piimage plan FILE`, `piimage build FILE`; every field is
described by `piimage help recipe`.")]
pub struct InitArgs {
    /// The recipe file to write.
    #[arg(long, value_name = "FILE", default_value = "cluster.yaml")]
    pub out: PathBuf,

    /// How many nodes (`node-01` ...).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub nodes: u16,

    /// The cluster name (a hostname label: a-z, 0-9, -).
    #[arg(long, value_name = "NAME", default_value = "cluster")]
    pub name: String,

    /// The base image: an http(s) URL (needs --sha256) or a local image file (default: the
    /// official Raspberry Pi OS Lite 64-bit image piimage's examples use).
    #[arg(long = "base", value_name = "URL|PATH")]
    pub base: Option<String>,

    /// The sha256 of the image at --base URL (or, for a file, checked when given).
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<Sha256Digest>,

    /// The SSH public key admin logs in with: a `.pub` file or a key line
    /// (`ssh-ed25519 AAAA... me@laptop`). Without it, the recipe says where to add one.
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<String>,
}

/// Runs `piimage init`.
pub fn run(args: &InitArgs, _global: &GlobalArgs) -> anyhow::Result<()> {
    let path = &args.out;
    if path.exists() || path.is_symlink() {
        bail!(
            "{}: the file exists; piimage init never replaces a file (pick another --out)",
            path.display()
        );
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let text = render(args, &dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".piimage-init-")
        .suffix(".yaml")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    let options = LoadOptions {
        base: None,
        skip_secrets: false,
    };
    recipe::load(tmp.path(), &options).context("the starter recipe does not validate")?;
    tmp.persist_noclobber(path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "wrote {} ({} nodes); next: piimage validate {0}",
        path.display(),
        args.nodes
    );
    Ok(())
}

/// A path given on the command line, as the recipe in `dir` must name it: relative paths are
/// relative to the recipe, so a relative path is made absolute unless the recipe is written
/// in the current directory.
fn recipe_path(given: &str, dir: &Path) -> anyhow::Result<String> {
    let p = Path::new(given);
    if p.is_absolute() || given.starts_with("~/") || dir == Path::new(".") {
        return Ok(given.to_owned());
    }
    let abs = std::path::absolute(p).with_context(|| format!("resolving {given}"))?;
    Ok(abs.display().to_string())
}

/// A YAML double-quoted scalar.
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn render(args: &InitArgs, dir: &Path) -> anyhow::Result<String> {
    let mut s = String::new();
    let name = &args.name;
    let _ = writeln!(
        s,
        "# {name}: a piimage recipe (written by `piimage init`).\n\
         # Field reference: `piimage help recipe`. Check it: `piimage validate FILE`;\n\
         # see what a build writes: `piimage plan FILE`; build: `piimage build FILE`.\n"
    );
    let _ = writeln!(
        s,
        "cluster:\n  name: {}\n  # domain: {name}.lan          # nodes get FQDNs node-01.{name}.lan\n",
        quoted(name)
    );
    match args.base.as_deref() {
        None => {
            let _ = writeln!(
                s,
                "# Raspberry Pi OS Lite (64-bit). Newer images and their sha256:\n\
                 # https://www.raspberrypi.com/software/operating-systems/\n\
                 # Without a network: `piimage build FILE --base path/to/image.img.xz`.\n\
                 base:\n  url: {DEFAULT_URL}\n  sha256: {DEFAULT_SHA256}\n"
            );
        }
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            let Some(sha) = args.sha256 else {
                bail!("--base {url}: a URL needs --sha256 HEX (the image's published sha256)");
            };
            let _ = writeln!(s, "base:\n  url: {}\n  sha256: {sha}\n", quoted(url));
        }
        Some(file) => {
            let _ = writeln!(s, "base:\n  path: {}", quoted(&recipe_path(file, dir)?));
            if let Some(sha) = args.sha256 {
                let _ = writeln!(s, "  sha256: {sha}");
            }
            s.push('\n');
        }
    }
    s.push_str(
        "# Reproducible builds (same host keys and disk ids every time): a secret seed, kept out\n\
         # of git.\n# seed: { env: CLUSTER_SEED }\n\n\
         output:\n  dir: out                      # relative to this file\n  \
         formats: [img.xz, bmap]\n  imager_manifest: true         # CLUSTER.rpi-imager-manifest for Raspberry Pi Imager\n\n\
         timezone: Etc/UTC\nlocale: en_GB.UTF-8\nkeyboard: gb\n\n\
         # The image's default user (pi) becomes admin, keeping its groups (gpio, video, ...).\n\
         default_user: { rename: admin }\n\n\
         users:\n  - name: admin\n    groups: [adm, sudo]\n    sudo: nopassword\n    \
         # No password: SSH keys only.\n",
    );
    match args.key.as_deref() {
        Some(key) if looks_like_key_line(key) => {
            let _ = writeln!(
                s,
                "    ssh_authorized_keys:\n      - {}",
                quoted(key.trim())
            );
        }
        Some(file) => {
            let _ = writeln!(
                s,
                "    ssh_authorized_keys:\n      - {{ file: {} }}",
                quoted(&recipe_path(file, dir)?)
            );
        }
        None => s.push_str(
            "    # Add your public key, then the nodes accept your logins:\n    \
             # ssh_authorized_keys:\n    #   - { file: ~/.ssh/id_ed25519.pub }\n",
        ),
    }
    let last = args.nodes;
    let width = last.to_string().len().max(2);
    let _ = write!(
        s,
        "\nssh:\n  password_authentication: false\n  host_keys: generate            # known_hosts is written next to the images\n  \
         # identity_file: ~/.ssh/id_ed25519   # your private key, for ssh_config and the inventory\n\n\
         nodes:\n  # On DHCP; for static addresses give the range a pool and a gateway:\n  \
         #   addresses: 192.168.1.101/24+\n  #   network: {{ interfaces: {{ eth0: {{ gateway: 192.168.1.1, dns: [192.168.1.1] }} }} }}\n  \
         - range: node-{{{first:0width$}..{last:0width$}}}\n",
        first = 1
    );
    Ok(s)
}

/// True when `s` is an OpenSSH public key line rather than a file name.
fn looks_like_key_line(s: &str) -> bool {
    let s = s.trim();
    ["ssh-", "ecdsa-", "sk-"].iter().any(|p| s.starts_with(p)) && s.contains(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_base_is_the_shipped_recipes() {
        let shipped = include_str!("../../recipes/cluster.yaml");
        assert!(
            shipped.contains(DEFAULT_URL),
            "cluster.yaml's base.url changed"
        );
        assert!(
            shipped.contains(DEFAULT_SHA256),
            "cluster.yaml's sha256 changed"
        );
    }

    #[test]
    fn key_lines_and_files() {
        let cases = [
            ("ed25519 line", "ssh-ed25519 AAAAC3 me@x", true),
            ("ecdsa line", "ecdsa-sha2-nistp256 AAAA", true),
            ("a file", "keys/admin.pub", false),
            ("a file named ssh-...", "ssh-key.pub", false),
        ];
        for (name, s, want) in cases {
            assert_eq!(looks_like_key_line(s), want, "{name}");
        }
    }
}
