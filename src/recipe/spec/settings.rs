//! Resolved node settings: users, SSH, network, cloud-init, boot, mounts, services, overlays.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::recipe::load::io_reason;

/// Where a secret (password, passphrase, seed) is read from, when the planner needs it.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Written in the recipe.
    Inline(String),
    /// The first line of a file (absolute path).
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl SecretSource {
    /// Reads the secret: the inline text, a file's first line (without its line ending), or
    /// the variable's value.
    ///
    /// # Errors
    /// The file cannot be read, the variable is unset or not Unicode, or the secret is empty.
    pub fn read(&self) -> Result<String, String> {
        let value = match self {
            Self::Inline(s) => s.clone(),
            Self::File(path) => {
                let text =
                    crate::io::bounded::read_to_string(path, crate::io::bounded::SECRET_LIMIT)
                        .map_err(|e| format!("reading {}: {}", path.display(), io_reason(&e)))?;
                text.lines().next().unwrap_or_default().to_owned()
            }
            Self::Env(var) => std::env::var(var).map_err(|e| format!("${var}: {e}"))?,
        };
        if value.is_empty() {
            return Err(format!("{self} is empty"));
        }
        Ok(value)
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("the inline value"),
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline(<redacted>)"),
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            Self::Env(v) => f.debug_tuple("Env").field(v).finish(),
        }
    }
}

/// The crypt(3) scheme piimage hashes a plaintext password with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PasswordScheme {
    /// yescrypt (`$y$`), the default of Debian 11+ and Ubuntu 22.04+.
    #[default]
    Yescrypt,
    /// SHA-512 crypt (`$6$`).
    Sha512,
}

/// A user's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSpec {
    /// A crypt(3) hash (`$y$…`, `$6$…`, `$5$…`) or a lock marker (`!`, `*`), used as is.
    Hash(String),
    /// A plaintext the planner reads and hashes.
    Plain {
        /// Where the plaintext is.
        source: SecretSource,
        /// How to hash it.
        scheme: PasswordScheme,
    },
}

/// How a user may use sudo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sudo {
    /// Not at all.
    #[default]
    None,
    /// With their password.
    Password,
    /// Without a password.
    Nopassword,
}

/// One user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// Login name (`^[a-z_][a-z0-9_-]*$`, at most 32 characters).
    pub name: String,
    /// uid; `None`: the first free uid from 1000 in the image.
    pub uid: Option<u32>,
    /// Supplementary groups.
    pub groups: Vec<String>,
    /// Login shell (default `/bin/bash`).
    pub shell: String,
    /// GECOS (full name); may be empty.
    pub gecos: String,
    /// sudo rule.
    pub sudo: Sudo,
    /// Password, if any (`None`: no password, key-only login).
    pub password: Option<PasswordSpec>,
    /// Lock the password (`!` before the hash); SSH keys still work.
    pub locked: bool,
    /// `authorized_keys` lines, each parsed as an OpenSSH public key (options allowed).
    pub authorized_keys: Vec<String>,
    /// Where the fields were written, for the checks against the image.
    pub at: UserOrigins,
}

/// Where a user's fields were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOrigins {
    /// `name`.
    pub name: super::super::located::Origin,
    /// `uid`, if written.
    pub uid: Option<super::super::located::Origin>,
    /// `shell`, if written.
    pub shell: Option<super::super::located::Origin>,
    /// Each entry of `groups`, in the order of [`UserSpec::groups`].
    pub groups: Vec<super::super::located::Origin>,
}

/// What happens to the image's default user (`pi` on Raspberry Pi OS; Ubuntu creates
/// `ubuntu` through cloud-init).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DefaultUser {
    /// Leave it as the image has it.
    #[default]
    Keep,
    /// Remove it and its home.
    Remove,
    /// Rename it (uid 1000, its groups and home move along); a `users` entry with the new
    /// name then applies to it.
    Rename(String),
}

/// SSH host keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HostKeys {
    /// piimage generates one Ed25519 key per node (from the seed, if any) and writes it to
    /// `known_hosts` next to the images.
    #[default]
    Generate,
    /// Keep the image's behaviour (keys generated on first boot).
    Image,
}

/// The SSH server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSpec {
    /// Start sshd at boot (default true).
    pub enable: bool,
    /// Allow password logins (default false).
    pub password_authentication: bool,
    /// Allow root logins (default false).
    pub permit_root_login: bool,
    /// Host keys.
    pub host_keys: HostKeys,
    /// Extra `Keyword value` lines for the drop-in, sorted by keyword.
    pub extra: Vec<(String, String)>,
    /// The operator's private key for logging in (`~/…` or absolute, a path on the operator's
    /// machine, never read by piimage): `IdentityFile` in `ssh_config`,
    /// `ansible_ssh_private_key_file` in the inventory.
    pub identity_file: Option<String>,
    /// Offer only that key (`IdentitiesOnly yes`); default true when `identity_file` is set.
    pub identities_only: bool,
}

/// IPv6 configuration mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ipv6Mode {
    /// Router advertisements (SLAAC), the OS default.
    #[default]
    Auto,
    /// DHCPv6.
    Dhcp,
    /// No IPv6 on this interface.
    Off,
}

/// IPv4 settings of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ipv4Spec {
    /// DHCP.
    pub dhcp: bool,
    /// Static addresses with prefix (the node's own address first, when it has a prefix).
    pub addresses: Vec<IpNet>,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
}

/// IPv6 settings of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ipv6Spec {
    /// Mode.
    pub mode: Ipv6Mode,
    /// Static addresses with prefix.
    pub addresses: Vec<IpNet>,
    /// Default gateway.
    pub gateway: Option<Ipv6Addr>,
}

/// Wi-Fi credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WifiSecret {
    /// A passphrase (8 to 63 characters) the planner turns into a PSK.
    Passphrase(SecretSource),
    /// A precomputed PSK: 64 hex digits.
    Psk(String),
}

/// A Wi-Fi network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WifiSpec {
    /// SSID (1 to 32 bytes).
    pub ssid: String,
    /// Credentials; never stored in clear in the image (a PSK is).
    pub secret: WifiSecret,
    /// Regulatory domain, two uppercase letters (`GB`).
    pub country: String,
    /// The network does not broadcast its SSID.
    pub hidden: bool,
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// Kernel name (`eth0`, `wlan0`).
    pub name: String,
    /// IPv4.
    pub ipv4: Ipv4Spec,
    /// IPv6.
    pub ipv6: Ipv6Spec,
    /// DNS servers.
    pub dns: Vec<IpAddr>,
    /// DNS search domains.
    pub search: Vec<String>,
    /// Wi-Fi, for a wireless interface.
    pub wifi: Option<WifiSpec>,
}

/// Network configuration of a node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkSpec {
    /// Interfaces to configure, sorted by name; empty: keep the image's configuration.
    pub interfaces: Vec<InterfaceSpec>,
    /// The node is reached through this node (a gateway): `ProxyJump` in `ssh_config`.
    pub route_via: Option<String>,
    /// Enable IPv4 and IPv6 forwarding (a router).
    pub ip_forward: bool,
}

/// How cloud-init settings land.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CloudInitMode {
    /// Write the final state into the root filesystem (and stop a seed from undoing it).
    #[default]
    Bake,
    /// Write NoCloud seed files for cloud-init to apply on first boot.
    Seed,
    /// Both.
    Both,
}

/// cloud-init handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudInitSpec {
    /// Mode.
    pub mode: CloudInitMode,
    /// Extra user-data keys merged into the generated `#cloud-config` (seed and both modes).
    pub user_data: Map<String, Value>,
    /// The node's instance id (template already expanded).
    pub instance_id: String,
}

/// One `config.txt` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLine {
    /// Conditional section (`pi4`, `all`, …), without brackets; `None`: `[all]`.
    pub section: Option<String>,
    /// The line (`dtoverlay=disable-wifi`).
    pub line: String,
}

/// Boot partition edits, and what first boot does with the root partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSpec {
    /// Lines `config.txt` must contain.
    pub config_txt: Vec<ConfigLine>,
    /// `cmdline.txt` tokens to add (a `key=value` token whose key takes one value replaces the
    /// tokens with that key; any other token is appended if missing).
    pub cmdline_add: Vec<String>,
    /// `cmdline.txt` tokens to remove (`quiet`; `key=` removes every `key=…` token), applied
    /// before `cmdline_add`.
    pub cmdline_remove: Vec<String>,
    /// Grow the root partition and filesystem to the whole card on first boot (default true).
    pub grow_root: bool,
}

impl Default for BootSpec {
    fn default() -> Self {
        Self {
            config_txt: Vec::new(),
            cmdline_add: Vec::new(),
            cmdline_remove: Vec::new(),
            grow_root: true,
        }
    }
}

/// An `/etc/fstab` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// What to mount (`nas:/export/cluster`, `LABEL=data`).
    pub source: String,
    /// Mount point (absolute).
    pub target: String,
    /// Filesystem type (`nfs`, `ext4`).
    pub fstype: String,
    /// Options (`defaults` unless set).
    pub options: String,
    /// Create the mount point in the image (default true).
    pub create: bool,
}

/// Console keyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyboardSpec {
    /// XKB layout (`gb`, `us`, `de`).
    pub layout: String,
    /// XKB model (`pc105`).
    pub model: Option<String>,
}

/// systemd units.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServicesSpec {
    /// Units to enable (full names, `nftables.service`).
    pub enable: Vec<String>,
    /// Units to disable.
    pub disable: Vec<String>,
}

/// Which partition an overlay goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OverlayTarget {
    /// The ext4 root filesystem.
    #[default]
    Root,
    /// The FAT boot partition (no modes, owners or symlinks).
    Boot,
}

/// A user or group in an owner rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRef {
    /// Numeric id.
    Id(u32),
    /// Name, looked up in the image (or among the recipe's users).
    Name(String),
}

impl fmt::Display for OwnerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(n) => write!(f, "{n}"),
            Self::Name(s) => f.write_str(s),
        }
    }
}

/// Owner of an overlay entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSpec {
    /// User.
    pub user: OwnerRef,
    /// Group.
    pub group: OwnerRef,
}

impl OwnerSpec {
    /// `root:root`.
    #[must_use]
    pub fn root() -> Self {
        Self {
            user: OwnerRef::Id(0),
            group: OwnerRef::Id(0),
        }
    }
}

/// What an overlay entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file, copied as is.
    File,
    /// A `.j2` template rendered per node (its destination has no `.j2`).
    Template,
    /// A symbolic link (relative, staying inside the overlay), copied as a link.
    Symlink {
        /// The link target, as written.
        target: String,
    },
}

/// One file, directory or link of an overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayEntry {
    /// The host file (absolute).
    pub source: PathBuf,
    /// Path relative to the overlay root, `/`-separated (`etc/motd`).
    pub rel: String,
    /// Absolute destination in the partition (`/etc/motd`; templates without `.j2`).
    pub dest: String,
    /// Kind.
    pub kind: EntryKind,
    /// Permission bits (`0o644` files, `0o755` directories and executables, unless a rule
    /// says otherwise).
    pub mode: u32,
    /// Owner (`root:root` unless a rule says otherwise).
    pub owner: OwnerSpec,
    /// True when a rule set `mode` or `owner`. A directory the image already has should keep
    /// its own mode and owner unless this is set.
    pub ruled: bool,
}

/// A directory tree copied into a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlaySpec {
    /// The overlay directory (absolute, canonical).
    pub source: PathBuf,
    /// Partition.
    pub target: OverlayTarget,
    /// Where the overlay root lands in the partition (absolute, default `/`).
    pub dest: String,
    /// Every entry, parents before children, sorted by path.
    pub entries: Vec<OverlayEntry>,
}
