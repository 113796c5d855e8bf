//! One node, with every setting merged (recipe, then its role, then the node itself).

use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::recipe::located::Origin;

use super::settings::{
    BootSpec, CloudInitSpec, DefaultUser, KeyboardSpec, MountSpec, NetworkSpec, OverlaySpec,
    ServicesSpec, SshSpec, UserSpec,
};

/// A node's address: an IP, with a prefix length when the address is configured statically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeAddress {
    /// The address.
    pub ip: IpAddr,
    /// Prefix length (`/24`): the address is set statically on the primary interface.
    /// `None`: the address is only known (DHCP reservation); it goes to `/etc/hosts` and the
    /// cluster files, not into the network configuration.
    pub prefix: Option<u8>,
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix {
            Some(p) => write!(f, "{}/{p}", self.ip),
            None => write!(f, "{}", self.ip),
        }
    }
}

/// One `/etc/hosts` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// Address.
    pub address: IpAddr,
    /// Names, canonical name first.
    pub names: Vec<String>,
}

/// One node, fully resolved.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Node name (unique in the cluster; a valid hostname label).
    pub name: String,
    /// Hostname (a label); the name unless the node sets `hostname`.
    pub hostname: String,
    /// `hostname.domain` when the cluster has a domain.
    pub fqdn: Option<String>,
    /// The node's address, if known: what the other nodes' `/etc/hosts` name it by.
    pub address: Option<NodeAddress>,
    /// The address the machine that connects (ssh_config, inventory, hosts, known_hosts,
    /// nodes.json) reaches the node at, when it is not `address` (a multi-homed gateway).
    pub access_address: Option<std::net::IpAddr>,
    /// Role (`node` unless set); groups nodes in the inventory and selects `roles.<role>`.
    pub role: String,
    /// For nodes from a range, the number in the name (`3` for `worker-03`).
    pub index: Option<u64>,
    /// The board's serial number or MAC (`serial:`/`mac:`), for network boot.
    pub boot_id: Option<super::BootId>,
    /// True when this recipe builds an image for the node (see `build:`).
    pub selected: bool,
    /// Template variables (merged: recipe, role, node).
    pub vars: Map<String, Value>,
    /// Users to create or update, in order.
    pub users: Vec<UserSpec>,
    /// What happens to the image's own default user.
    pub default_user: DefaultUser,
    /// SSH server.
    pub ssh: SshSpec,
    /// Extra `/etc/hosts` entries (after the cluster's, see
    /// [`ResolvedRecipe::cluster_hosts`](super::ResolvedRecipe::cluster_hosts)).
    pub hosts_extra: Vec<HostEntry>,
    /// Network configuration.
    pub network: NetworkSpec,
    /// cloud-init handling.
    pub cloud_init: CloudInitSpec,
    /// `config.txt` and `cmdline.txt` edits.
    pub boot: BootSpec,
    /// `/etc/fstab` entries.
    pub mounts: Vec<MountSpec>,
    /// Time zone (`Europe/London`).
    pub timezone: Option<String>,
    /// Locale (`en_GB.UTF-8`).
    pub locale: Option<String>,
    /// Console keyboard.
    pub keyboard: Option<KeyboardSpec>,
    /// systemd units to enable or disable.
    pub services: ServicesSpec,
    /// Directory trees copied into the image, in order (later files win).
    pub overlays: Vec<OverlaySpec>,
    /// Where the settings that only the base image can check were written.
    pub origins: SettingOrigins,
}

/// Where a node's settings were written (after merging: the recipe, role or node entry that
/// won), for the checks that need the base image (`timezone`, `locale`, `keyboard`, the
/// `dtoverlay=` lines of `boot.config_txt`), so their errors name `file:line:column: field`
/// like every other recipe problem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingOrigins {
    /// `timezone`.
    pub timezone: Option<Origin>,
    /// `locale`.
    pub locale: Option<Origin>,
    /// `keyboard` (its layout).
    pub keyboard: Option<Origin>,
    /// Each line of `boot.config_txt`, in the order of [`BootSpec::config_txt`].
    pub config_txt: Vec<Origin>,
}
