//! Raw (as written) node settings: allowed at the top of a recipe, under `roles.<role>` and in
//! each `nodes` entry. Field meanings are documented in `recipes/README.md`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::recipe::located::{Located, StrOr};
use crate::recipe::merge::{merge_struct, replace_struct, stamp_struct};
use crate::recipe::spec::{CloudInitMode, HostKeys, Ipv6Mode, OverlayTarget, PasswordScheme, Sudo};

/// Declares a struct holding the node settings fields (after `$extra` fields), with
/// `take_settings`, `stamp_settings` and `merge_settings`. Every field is
/// `Option<Located<T>>`: absent means "inherit".
macro_rules! with_settings {
    ($(#[$m:meta])* pub struct $name:ident { $($extra:tt)* }) => {
        $crate::recipe::raw::settings::with_settings!(@emit [$(#[$m])*] $name [$($extra)*];
            vars: serde_json::Map<String, serde_json::Value>,
            users: Vec<$crate::recipe::located::Located<$crate::recipe::raw::RawUser>>,
            default_user: $crate::recipe::located::StrOr<$crate::recipe::raw::RawRename>,
            ssh: $crate::recipe::raw::RawSsh,
            hosts: $crate::recipe::raw::RawHosts,
            network: $crate::recipe::raw::RawNetwork,
            cloud_init: $crate::recipe::raw::RawCloudInit,
            boot: $crate::recipe::raw::RawBoot,
            hardware: $crate::recipe::raw::RawHardware,
            mounts: Vec<$crate::recipe::located::Located<$crate::recipe::raw::RawMount>>,
            timezone: String,
            locale: String,
            keyboard: $crate::recipe::located::StrOr<$crate::recipe::raw::RawKeyboard>,
            services: $crate::recipe::raw::RawServices,
            overlays: Vec<$crate::recipe::located::Located<
                $crate::recipe::located::StrOr<$crate::recipe::raw::RawOverlay>>>,
        );
    };
    (@emit [$($m:tt)*] $name:ident [$($extra:tt)*]; $($f:ident : $t:ty),* $(,)?) => {
        $($m)*
        #[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $($extra)*
            $(
                /// A node setting (see `recipes/README.md`).
                pub $f: Option<$crate::recipe::located::Located<$t>>,
            )*
        }

        #[allow(dead_code, reason = "generated for every settings holder; not all use all")]
        impl $name {
            /// Moves the settings fields out.
            pub(crate) fn take_settings(&mut self) -> $crate::recipe::raw::RawSettings {
                $crate::recipe::raw::RawSettings { $($f: self.$f.take(),)* }
            }

            /// Stamps the settings fields.
            pub(crate) fn stamp_settings(&mut self, path: &str) {
                $( $crate::recipe::merge::Stamp::stamp(
                    &mut self.$f,
                    &$crate::recipe::merge::field_path(path, stringify!($f)),
                ); )*
            }

            /// Lays `child`'s settings over these.
            pub(crate) fn merge_settings(&mut self, child: $crate::recipe::raw::RawSettings) {
                let $crate::recipe::raw::RawSettings { $($f),* } = child;
                $( $crate::recipe::merge::Merge::merge(&mut self.$f, $f); )*
            }
        }
    };
}

pub(crate) use with_settings;

with_settings! {
    /// Node settings alone (a `roles.<role>` entry; also what the other levels hold).
    pub struct RawSettings {}
}

impl crate::recipe::merge::Merge for RawSettings {
    fn merge(&mut self, child: Self) {
        self.merge_settings(child);
    }
}

impl crate::recipe::merge::Stamp for RawSettings {
    fn stamp(&mut self, path: &str) {
        self.stamp_settings(path);
    }
}

/// `users[]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUser {
    pub name: Located<String>,
    pub uid: Option<Located<u32>>,
    pub groups: Option<Located<Vec<Located<String>>>>,
    pub shell: Option<Located<String>>,
    pub gecos: Option<Located<String>>,
    pub sudo: Option<Located<Sudo>>,
    pub password: Option<Located<StrOr<RawPassword>>>,
    pub locked: Option<Located<bool>>,
    pub ssh_authorized_keys: Option<Located<Vec<Located<StrOr<RawKeyFile>>>>>,
}
stamp_struct!(RawUser {
    name,
    uid,
    groups,
    shell,
    gecos,
    sudo,
    password,
    locked,
    ssh_authorized_keys
});

/// `users[].password` as a mapping.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPassword {
    pub hash: Option<Located<String>>,
    pub file: Option<Located<String>>,
    pub env: Option<Located<String>>,
    pub method: Option<Located<PasswordScheme>>,
}
stamp_struct!(RawPassword {
    hash,
    file,
    env,
    method
});

/// `{ file: … }` for an SSH key list.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeyFile {
    pub file: Located<String>,
}
stamp_struct!(RawKeyFile { file });

/// A secret as a mapping: `{ file: … }` or `{ env: … }`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecret {
    pub file: Option<Located<String>>,
    pub env: Option<Located<String>>,
}
stamp_struct!(RawSecret { file, env });

/// `default_user: { rename: NAME }`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRename {
    pub rename: Located<String>,
}
stamp_struct!(RawRename { rename });

/// `ssh`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSsh {
    pub enable: Option<Located<bool>>,
    pub password_authentication: Option<Located<bool>>,
    pub permit_root_login: Option<Located<bool>>,
    pub host_keys: Option<Located<HostKeys>>,
    pub extra: Option<Located<BTreeMap<String, Located<Value>>>>,
    pub identity_file: Option<Located<String>>,
    pub identities_only: Option<Located<bool>>,
}
merge_struct!(RawSsh {
    enable,
    password_authentication,
    permit_root_login,
    host_keys,
    extra,
    identity_file,
    identities_only
});

/// `hosts`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHosts {
    pub extra: Option<Located<Vec<Located<RawHostEntry>>>>,
}
merge_struct!(RawHosts { extra });

/// `hosts.extra[]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHostEntry {
    pub address: Located<String>,
    pub names: Located<Vec<Located<String>>>,
}
stamp_struct!(RawHostEntry { address, names });

/// `network`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    pub primary: Option<Located<String>>,
    pub interfaces: Option<Located<BTreeMap<String, Located<RawInterface>>>>,
    pub route_via: Option<Located<String>>,
    pub ip_forward: Option<Located<bool>>,
}
merge_struct!(RawNetwork {
    primary,
    interfaces,
    route_via,
    ip_forward
});

/// `network.interfaces.<name>`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInterface {
    pub dhcp: Option<Located<bool>>,
    pub addresses: Option<Located<Vec<Located<String>>>>,
    pub gateway: Option<Located<String>>,
    pub ipv6: Option<Located<Ipv6Mode>>,
    pub gateway6: Option<Located<String>>,
    pub dns: Option<Located<Vec<Located<String>>>>,
    pub search: Option<Located<Vec<Located<String>>>>,
    pub wifi: Option<Located<RawWifi>>,
}
merge_struct!(RawInterface {
    dhcp,
    addresses,
    gateway,
    ipv6,
    gateway6,
    dns,
    search,
    wifi
});

/// `network.interfaces.<name>.wifi` (replaced as a whole: a passphrase belongs to its SSID).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWifi {
    pub ssid: Located<String>,
    pub passphrase: Option<Located<StrOr<RawSecret>>>,
    pub psk: Option<Located<String>>,
    pub country: Option<Located<String>>,
    pub hidden: Option<Located<bool>>,
}
replace_struct!(RawWifi {
    ssid,
    passphrase,
    psk,
    country,
    hidden
});

/// `cloud_init`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCloudInit {
    pub mode: Option<Located<CloudInitMode>>,
    pub user_data: Option<Located<Map<String, Value>>>,
    pub instance_id: Option<Located<String>>,
}
merge_struct!(RawCloudInit {
    mode,
    user_data,
    instance_id
});

/// `boot`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBoot {
    pub config_txt: Option<Located<Vec<Located<StrOr<RawConfigLine>>>>>,
    pub cmdline: Option<Located<RawCmdline>>,
    pub grow_root: Option<Located<bool>>,
}
merge_struct!(RawBoot {
    config_txt,
    cmdline,
    grow_root
});

/// `boot.config_txt[]` as a mapping.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfigLine {
    pub line: Located<String>,
    pub section: Option<Located<String>>,
}
stamp_struct!(RawConfigLine { line, section });

/// `boot.cmdline`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCmdline {
    pub add: Option<Located<Vec<Located<String>>>>,
    pub remove: Option<Located<Vec<Located<String>>>>,
}
merge_struct!(RawCmdline { add, remove });

/// `mounts[]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMount {
    pub source: Located<String>,
    pub target: Located<String>,
    pub r#type: Located<String>,
    pub options: Option<Located<String>>,
    pub create: Option<Located<bool>>,
}
stamp_struct!(RawMount {
    source,
    target,
    r#type,
    options,
    create
});

/// `keyboard` as a mapping.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeyboard {
    pub layout: Located<String>,
    pub model: Option<Located<String>>,
}
stamp_struct!(RawKeyboard { layout, model });

/// `hardware`: what is attached to the board, as `config.txt` settings.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHardware {
    pub poe_hat: Option<Located<PoeHat>>,
    pub poe_fan: Option<Located<Vec<Located<RawFanStep>>>>,
    pub wifi: Option<Located<bool>>,
    pub bluetooth: Option<Located<bool>>,
    pub pcie_gen: Option<Located<u32>>,
}
merge_struct!(RawHardware {
    poe_hat,
    poe_fan,
    wifi,
    bluetooth,
    pcie_gen
});

/// Which Raspberry Pi PoE HAT is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PoeHat {
    /// The PoE HAT (802.3af): overlay `rpi-poe`.
    Poe,
    /// The PoE+ HAT (802.3at): overlay `rpi-poe-plus`.
    PoePlus,
}

/// `hardware.poe_fan[]`: one fan step, in degrees Celsius.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFanStep {
    pub temp: Located<u32>,
    pub hysteresis: Option<Located<u32>>,
}
stamp_struct!(RawFanStep { temp, hysteresis });

/// `services`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServices {
    pub enable: Option<Located<Vec<Located<String>>>>,
    pub disable: Option<Located<Vec<Located<String>>>>,
}
merge_struct!(RawServices { enable, disable });

/// `overlays[]` as a mapping.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverlay {
    pub source: Located<String>,
    pub target: Option<Located<OverlayTarget>>,
    pub dest: Option<Located<String>>,
    pub templates: Option<Located<bool>>,
    pub rules: Option<Located<Vec<Located<RawRule>>>>,
}
stamp_struct!(RawOverlay {
    source,
    target,
    dest,
    templates,
    rules
});

/// `overlays[].rules[]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub glob: Located<String>,
    pub mode: Option<Located<String>>,
    pub owner: Option<Located<String>>,
}
stamp_struct!(RawRule { glob, mode, owner });
