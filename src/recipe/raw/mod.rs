//! The recipe as written: serde types with `deny_unknown_fields`, every value [`Located`].
//!
//! Nothing here is validated beyond YAML types; [`super::resolve`] turns these into
//! [`super::spec`] types. Keeping the two apart (as ripgrep keeps low-level and high-level
//! arguments apart) lets the merge work on exactly what was written, with its origin.

mod settings;

use std::collections::BTreeMap;

use crate::recipe::located::{Located, StrOr};
use crate::recipe::merge::{Merge, Stamp, field_path, leaf, merge_struct, replace_struct};
use crate::recipe::spec::{
    CloudInitMode, DerivedKind, HostKeys, Ipv6Mode, Medium, OutputFormat, OverlayTarget,
    PasswordScheme, Sudo,
};

pub(crate) use settings::{
    PoeHat, RawBoot, RawCloudInit, RawConfigLine, RawHardware, RawHosts, RawInterface, RawKeyFile,
    RawKeyboard, RawMount, RawNetwork, RawOverlay, RawPassword, RawRename, RawRule, RawSecret,
    RawServices, RawSettings, RawSsh, RawUser, RawWifi, with_settings,
};

leaf!(
    PoeHat,
    Sudo,
    HostKeys,
    Ipv6Mode,
    CloudInitMode,
    OverlayTarget,
    PasswordScheme,
    Medium,
    OutputFormat,
    DerivedKind
);

with_settings! {
    /// A recipe file.
    pub struct RawRecipe {
        pub extends: Option<Located<String>>,
        pub cluster: Option<Located<RawCluster>>,
        pub base: Option<Located<RawBase>>,
        pub seed: Option<Located<StrOr<RawSecret>>>,
        pub epoch: Option<Located<i64>>,
        pub output: Option<Located<RawOutput>>,
        pub build: Option<Located<RawBuild>>,
        pub roles: Option<Located<BTreeMap<String, Located<RawSettings>>>>,
        pub nodes: Option<Located<Vec<Located<RawNode>>>>,
        pub netboot: Option<Located<RawNetboot>>,
        pub secrets: Option<Located<BTreeMap<String, Located<RawClusterSecret>>>>,
    }
}

impl Merge for RawRecipe {
    fn merge(&mut self, mut child: Self) {
        let settings = child.take_settings();
        self.merge_settings(settings);
        let Self {
            extends,
            cluster,
            base,
            seed,
            epoch,
            output,
            build,
            roles,
            nodes,
            netboot,
            secrets,
            ..
        } = child;
        self.extends = extends;
        self.cluster.merge(cluster);
        self.base.merge(base);
        self.seed.merge(seed);
        self.epoch.merge(epoch);
        self.output.merge(output);
        self.build.merge(build);
        self.roles.merge(roles);
        self.nodes.merge(nodes);
        self.netboot.merge(netboot);
        self.secrets.merge(secrets);
    }
}

impl Stamp for RawRecipe {
    fn stamp(&mut self, path: &str) {
        self.stamp_settings(path);
        let f = |name| field_path(path, name);
        self.extends.stamp(&f("extends"));
        self.cluster.stamp(&f("cluster"));
        self.base.stamp(&f("base"));
        self.seed.stamp(&f("seed"));
        self.epoch.stamp(&f("epoch"));
        self.output.stamp(&f("output"));
        self.build.stamp(&f("build"));
        self.roles.stamp(&f("roles"));
        self.nodes.stamp(&f("nodes"));
        self.netboot.stamp(&f("netboot"));
        self.secrets.stamp(&f("secrets"));
    }
}

with_settings! {
    /// A `nodes[]` entry: one node (`name`) or a range of them (`range`).
    pub struct RawNode {
        pub name: Option<Located<String>>,
        pub range: Option<Located<String>>,
        pub hostname: Option<Located<String>>,
        pub address: Option<Located<String>>,
        pub access_address: Option<Located<String>>,
        pub addresses: Option<Located<StrOr<Vec<Located<String>>>>>,
        pub role: Option<Located<String>>,
        pub serial: Option<Located<String>>,
        pub serials: Option<Located<Vec<Located<String>>>>,
        pub mac: Option<Located<String>>,
        pub macs: Option<Located<Vec<Located<String>>>>,
    }
}

impl Stamp for RawNode {
    fn stamp(&mut self, path: &str) {
        self.stamp_settings(path);
        let f = |name| field_path(path, name);
        self.name.stamp(&f("name"));
        self.range.stamp(&f("range"));
        self.hostname.stamp(&f("hostname"));
        self.address.stamp(&f("address"));
        self.access_address.stamp(&f("access_address"));
        self.addresses.stamp(&f("addresses"));
        self.role.stamp(&f("role"));
        self.serial.stamp(&f("serial"));
        self.serials.stamp(&f("serials"));
        self.mac.stamp(&f("mac"));
        self.macs.stamp(&f("macs"));
    }
}

/// `cluster`.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub name: Option<Located<String>>,
    pub domain: Option<Located<String>>,
    pub description: Option<Located<String>>,
}
merge_struct!(RawCluster {
    name,
    domain,
    description
});

/// `base` (replaced as a whole: `path` and `url` are alternatives).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBase {
    pub url: Option<Located<String>>,
    pub path: Option<Located<String>>,
    pub sha256: Option<Located<String>>,
}
replace_struct!(RawBase { url, path, sha256 });

/// `output`.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutput {
    pub dir: Option<Located<String>>,
    pub name: Option<Located<String>>,
    pub formats: Option<Located<Vec<Located<OutputFormat>>>>,
    pub medium: Option<Located<Medium>>,
    pub size: Option<Located<String>>,
    pub device_size: Option<Located<String>>,
    pub imager_manifest: Option<Located<bool>>,
    pub base_url: Option<Located<String>>,
}
merge_struct!(RawOutput {
    dir,
    name,
    formats,
    medium,
    size,
    device_size,
    imager_manifest,
    base_url
});

/// `netboot`.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetboot {
    pub server: Option<Located<String>>,
    pub export_root: Option<Located<String>>,
    pub tftp_root: Option<Located<String>>,
    pub dhcp_reply_delay: Option<Located<u32>>,
}
merge_struct!(RawNetboot {
    server,
    export_root,
    tftp_root,
    dhcp_reply_delay
});

/// `build` (replaced as a whole).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBuild {
    pub roles: Option<Located<Vec<Located<String>>>>,
    pub nodes: Option<Located<Vec<Located<String>>>>,
}
replace_struct!(RawBuild { roles, nodes });

/// A `secrets:` entry: `{ derive: KIND }`, `{ file: PATH }` or `{ env: VAR }` (replaced as a
/// whole: the three are alternatives).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClusterSecret {
    pub derive: Option<Located<DerivedKind>>,
    pub file: Option<Located<String>>,
    pub env: Option<Located<String>>,
}
replace_struct!(RawClusterSecret { derive, file, env });
