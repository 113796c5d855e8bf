//! The validated recipe: what the planner consumes.
//!
//! Everything here has been checked: names are valid hostnames and login names, addresses
//! parsed, SSH keys parsed, overlay trees walked and their templates parsed, paths made
//! absolute (relative to the recipe file that wrote them). Secrets are *not* read into these
//! types: passwords, Wi-Fi passphrases and the seed stay [`SecretSource`]s the planner reads
//! when it needs them, so a plaintext never sits in a long-lived value.

mod node;
mod settings;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::disk::source::BaseSpec;

pub use node::{HostEntry, NodeAddress, NodeSpec, SettingOrigins};
pub use settings::{
    BootSpec, CloudInitMode, CloudInitSpec, ConfigLine, DefaultUser, EntryKind, HostKeys,
    InterfaceSpec, Ipv4Spec, Ipv6Mode, Ipv6Spec, KeyboardSpec, MountSpec, NetworkSpec,
    OverlayEntry, OverlaySpec, OverlayTarget, OwnerRef, OwnerSpec, PasswordScheme, PasswordSpec,
    SecretSource, ServicesSpec, SshSpec, Sudo, UserOrigins, UserSpec, WifiSecret, WifiSpec,
};

/// The default [`ResolvedRecipe::epoch`]: 2024-01-01T00:00:00Z.
pub const DEFAULT_EPOCH: i64 = 1_704_067_200;

/// A recipe, loaded (with its `extends` chain), merged, expanded and validated.
#[derive(Debug, Clone)]
pub struct ResolvedRecipe {
    /// The recipe file as given on the command line.
    pub file: PathBuf,
    /// Every file read, the most basic first (the `extends` chain ends with `file`).
    pub chain: Vec<PathBuf>,
    /// Cluster identity.
    pub cluster: ClusterSpec,
    /// The base image (after `--base`, if given). Local paths are absolute or relative to the
    /// current directory, never to the recipe.
    pub base: BaseSpec,
    /// True when `base` comes from the override rather than the recipe.
    pub base_overridden: bool,
    /// Secret that makes builds reproducible (host keys, salts, disk ids, connection UUIDs
    /// derive from it); `None`: fresh randomness on every build.
    pub seed: Option<SecretSource>,
    /// Timestamp (Unix seconds) of every file written; [`DEFAULT_EPOCH`] unless set.
    pub epoch: i64,
    /// Where and how images are written.
    pub output: OutputSpec,
    /// Every node of the cluster, in recipe order (ranges expanded), including nodes this
    /// recipe does not build (see [`NodeSpec::selected`]); they still appear in every node's
    /// `/etc/hosts` and in the cluster files.
    pub nodes: Vec<NodeSpec>,
    /// The `netboot:` section (set whenever `output.formats` lists `netboot`).
    pub netboot: Option<NetbootSpec>,
    /// `secrets:`: named cluster-wide secrets templates see as `secrets.NAME`, in name order.
    pub secrets: Vec<ClusterSecret>,
}

/// A `secrets:` entry: one value shared by every node, for templates (`secrets.NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSecret {
    /// The name templates use.
    pub name: String,
    /// Where the value comes from.
    pub value: ClusterSecretValue,
}

/// Where a [`ClusterSecret`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterSecretValue {
    /// Derived from the recipe's seed (`derive: KIND`).
    Derived(DerivedKind),
    /// Read from a file or an environment variable (`file:` / `env:`).
    Source(SecretSource),
}

/// What a derived secret is (`secrets.NAME.derive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum DerivedKind {
    /// 32 random bytes as 64 lowercase hex digits (a join token, a shared password).
    #[serde(rename = "token")]
    Token,
    /// An Ed25519 key pair: templates see `.private` (OpenSSH format) and `.public`.
    #[serde(rename = "ssh-ed25519")]
    SshEd25519,
}

/// `netboot:`: the server the nodes boot from (TFTP and NFS on one machine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetbootSpec {
    /// The server's address on the nodes' network.
    pub server: std::net::IpAddr,
    /// The prefix length of that network (`/24`), for dnsmasq's proxy-DHCP range.
    pub prefix: u8,
    /// Where the nodes' roots are exported: node `N`'s root is `EXPORT_ROOT/N`.
    pub export_root: String,
    /// The TFTP server's root directory on the server (the `tftp/` tree goes there).
    pub tftp_root: String,
    /// dnsmasq's `dhcp-reply-delay`, seconds.
    pub reply_delay: u32,
}

/// What the Raspberry Pi bootloader names a board's TFTP directory after.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BootId {
    /// The board's serial number: 8 lowercase hex digits (`TFTP_PREFIX=0`, the default).
    Serial(String),
    /// The board's Ethernet MAC, lowercase, `-`-separated (`TFTP_PREFIX=2`).
    Mac(String),
}

impl BootId {
    /// The name of the board's TFTP directory.
    #[must_use]
    pub fn dir_name(&self) -> &str {
        match self {
            Self::Serial(s) | Self::Mac(s) => s,
        }
    }
}

impl ResolvedRecipe {
    /// The nodes this recipe builds images for.
    pub fn selected(&self) -> impl Iterator<Item = &NodeSpec> {
        self.nodes.iter().filter(|n| n.selected)
    }

    /// The node called `name`.
    #[must_use]
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The cluster part of every node's `/etc/hosts`: one entry per node with an address,
    /// names FQDN first (when the cluster has a domain), then the short hostname.
    #[must_use]
    pub fn cluster_hosts(&self) -> Vec<HostEntry> {
        self.nodes
            .iter()
            .filter_map(|n| {
                let address: IpAddr = n.address.as_ref()?.ip;
                let mut names: Vec<String> = n.fqdn.iter().cloned().collect();
                names.push(n.hostname.clone());
                Some(HostEntry { address, names })
            })
            .collect()
    }
}

/// Cluster identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Short name (a hostname label); used in output names and instance ids.
    pub name: String,
    /// DNS domain; nodes get FQDN `hostname.domain`.
    pub domain: Option<String>,
    /// Free text: what the cluster is for.
    pub description: Option<String>,
}

/// Where and how images are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// Output directory (absolute, or relative to the current directory when the recipe does
    /// not set one: `out`).
    pub dir: PathBuf,
    /// File name template without extension; placeholders `{cluster}`, `{node}`, `{role}`.
    pub name: String,
    /// Formats to write, in recipe order, without duplicates.
    pub formats: Vec<OutputFormat>,
    /// The medium the image is for.
    pub medium: Medium,
    /// Grow the image (and its root partition) to this many bytes; `None`: keep the base size.
    pub size: Option<u64>,
    /// The capacity in bytes of the smallest device (card, eMMC module, SSD) the images are
    /// for: the image must fit it; `None`: not checked until `piimage flash` sees the device.
    pub device_size: Option<u64>,
    /// Also write a Raspberry Pi Imager `os_list` manifest.
    pub imager_manifest: bool,
    /// Where the manifest's images will be served from (`BASE/NAME` URLs); `None`: relative
    /// references.
    pub base_url: Option<crate::output::manifest::BaseUrl>,
}

impl OutputSpec {
    /// The file name (without extension) for `node`.
    #[must_use]
    pub fn file_stem(&self, cluster: &str, node: &NodeSpec) -> String {
        self.name
            .replace("{cluster}", cluster)
            .replace("{node}", &node.name)
            .replace("{role}", &node.role)
    }
}

/// An output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, schemars::JsonSchema)]
pub enum OutputFormat {
    /// Raw disk image (sparse).
    #[serde(rename = "img")]
    Img,
    /// zstd-compressed image.
    #[serde(rename = "img.zst")]
    ImgZst,
    /// xz-compressed image.
    #[serde(rename = "img.xz")]
    ImgXz,
    /// gzip-compressed image.
    #[serde(rename = "img.gz")]
    ImgGz,
    /// bmap file (block map) of the raw image, for `bmaptool copy`.
    #[serde(rename = "bmap")]
    Bmap,
    /// Network boot: a TFTP tree and a root archive per node, and the server's configuration
    /// (`docs/netboot.md`).
    #[serde(rename = "netboot")]
    Netboot,
}

impl OutputFormat {
    /// The file extension (`img.zst`).
    #[must_use]
    pub const fn extension(self) -> &'static str {
        match self.image() {
            Some(format) => format.extension(),
            None if matches!(self, Self::Bmap) => "bmap",
            None => "netboot",
        }
    }

    /// The image format this entry asks for (`None` for `bmap` and `netboot`, which are made
    /// from an image).
    #[must_use]
    pub const fn image(self) -> Option<crate::output::ImageFormat> {
        use crate::output::ImageFormat;
        match self {
            Self::Img => Some(ImageFormat::Raw),
            Self::ImgZst => Some(ImageFormat::Zstd),
            Self::ImgXz => Some(ImageFormat::Xz),
            Self::ImgGz => Some(ImageFormat::Gzip),
            Self::Bmap | Self::Netboot => None,
        }
    }

    /// True for the image formats (everything but `bmap` and `netboot`).
    #[must_use]
    pub const fn is_image(self) -> bool {
        self.image().is_some()
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// The storage the image is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Medium {
    /// microSD card.
    #[default]
    Sd,
    /// On-board eMMC (Compute Modules).
    Emmc,
    /// NVMe SSD (Raspberry Pi 5 and CM5 boot from it).
    Nvme,
}

impl fmt::Display for Medium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sd => "sd",
            Self::Emmc => "emmc",
            Self::Nvme => "nvme",
        })
    }
}
