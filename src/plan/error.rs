//! Errors planning a node, as values a caller can match on.
//!
//! Most of what could go wrong with a recipe is caught before planning, by the recipe's own
//! checks and by the checks against the image ([`super::image_checks`],
//! [`super::user_checks`]), each naming a recipe line. What is left for the planner is what only
//! planning finds out: a secret that cannot be read when it is needed, a template that does not
//! render, an overlay file that went away, a unit with nothing to enable. Each error says which
//! node and which part of its settings; where the recipe recorded where that setting was
//! written, [`PlanError::origin`] gives the place, which `--json` reports as the error's
//! `file`, `line`, `column` and `field`.
//!
//! Like every error of the crate (`docs/errors.md`), a variant that returns a cause from
//! `source()` does not print it: `node worker-1` is the outer message, the conflict the next
//! one, and a library's error (an I/O error, a key encoding error) the last.

use std::path::PathBuf;

use crate::recipe::Origin;
use crate::secrets::hostkey::KeyError;
use crate::secrets::password::HashError;
use crate::secrets::wifi::PskError;

/// Errors planning a node.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// One node's settings cannot be planned on this image.
    #[error("node {node}")]
    Node {
        /// The node's name.
        node: String,
        /// Where in the recipe the setting at fault was written, when the recipe recorded it.
        at: Option<Box<Origin>>,
        /// What is wrong.
        #[source]
        conflict: NodeConflict,
    },
    /// A `secrets:` entry cannot be read.
    #[error("secrets.{name}: {reason}")]
    SecretSource {
        /// The secret's name.
        name: String,
        /// Why it cannot be read (the file or variable and the reason).
        reason: String,
    },
    /// A derived `secrets:` key cannot be encoded.
    #[error("secrets.{name}")]
    SecretKey {
        /// The secret's name.
        name: String,
        /// The encoder's error.
        #[source]
        source: KeyError,
    },
}

impl PlanError {
    /// A conflict of `node`'s settings, with no recorded place.
    pub(crate) fn node(node: &str, conflict: NodeConflict) -> Self {
        Self::Node {
            node: node.to_owned(),
            at: None,
            conflict,
        }
    }

    /// Where in the recipe the setting at fault was written, if the recipe recorded it.
    #[must_use]
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Self::Node { at, .. } => at.as_deref(),
            Self::SecretSource { .. } | Self::SecretKey { .. } => None,
        }
    }

    /// The recipe field at fault, relative to the node for node errors (`users`,
    /// `overlays`, `services.enable`), or `secrets.NAME`.
    #[must_use]
    pub fn field(&self) -> String {
        match self {
            Self::Node { conflict, .. } => conflict.field().to_owned(),
            Self::SecretSource { name, .. } | Self::SecretKey { name, .. } => {
                format!("secrets.{name}")
            }
        }
    }
}

/// What is wrong with one node's settings.
#[derive(Debug, thiserror::Error)]
pub enum NodeConflict {
    /// `cloud_init.mode` is `seed` or `both` on an image without cloud-init.
    #[error(
        "cloud_init.mode seed/both needs an image with cloud-init; this one has none (use mode: bake)"
    )]
    NoCloudInit,
    /// A user's plain password cannot be read from its file or variable.
    #[error("password of {user}: {reason}")]
    PasswordSource {
        /// The user.
        user: String,
        /// Why it cannot be read.
        reason: String,
    },
    /// A user's password cannot be hashed.
    #[error("password of {user}")]
    PasswordHash {
        /// The user.
        user: String,
        /// The hasher's error.
        #[source]
        source: HashError,
    },
    /// A user of the recipe is already an account of the image that stays.
    #[error(
        "user {user} already exists in the image; write `default_user: remove` to replace the \
         image's default user, or choose another name"
    )]
    UserExists {
        /// The user.
        user: String,
    },
    /// Every uid from 1000 to 59999 is taken.
    #[error("no free uid left")]
    NoFreeUid {
        /// The user that needed one.
        user: String,
    },
    /// A user's group is not in the image's `/etc/group`.
    #[error("user {user}: group {group} does not exist in the image")]
    UnknownGroup {
        /// The user.
        user: String,
        /// The group.
        group: String,
    },
    /// A Wi-Fi passphrase cannot be read from its file or variable.
    #[error("Wi-Fi passphrase: {reason}")]
    WifiPassphraseSource {
        /// Why it cannot be read.
        reason: String,
    },
    /// A Wi-Fi passphrase or SSID that WPA cannot take.
    #[error("Wi-Fi network {ssid:?}")]
    WifiKey {
        /// The network's SSID.
        ssid: String,
        /// What WPA refuses.
        #[source]
        source: PskError,
    },
    /// An overlay entry's owner is neither an account of the image nor a user of the node.
    #[error("overlay {dest}: owner {user}: no such user in the image or among the node's users")]
    OverlayOwner {
        /// The entry's path in the image.
        dest: String,
        /// The owner as written.
        user: String,
    },
    /// An overlay entry's group is neither a group of the image nor a user of the node.
    #[error("overlay {dest}: group {group}: no such group in the image or among the node's users")]
    OverlayGroup {
        /// The entry's path in the image.
        dest: String,
        /// The group as written.
        group: String,
    },
    /// An overlay file cannot be read (it changed since the recipe was checked).
    #[error("overlay {}", path.display())]
    OverlayRead {
        /// The file on the build machine.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A template file is not UTF-8.
    #[error("template {} is not UTF-8", path.display())]
    TemplateNotUtf8 {
        /// The template on the build machine.
        path: PathBuf,
    },
    /// A template does not render (the message names the template, line and reason).
    #[error("{0}")]
    Template(String),
    /// The node's SSH host key cannot be encoded.
    #[error("SSH host key")]
    HostKey(#[source] KeyError),
    /// The image's first-boot steps cannot be disarmed as the recipe needs.
    #[error("{0}")]
    Firstboot(String),
    /// A unit of `services.enable` cannot be enabled (the message names the unit).
    #[error("{0}")]
    EnableLinks(String),
}

impl NodeConflict {
    /// The node's recipe field at fault.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::NoCloudInit => "cloud_init.mode",
            Self::PasswordSource { .. } | Self::PasswordHash { .. } => "users.password",
            Self::UserExists { .. } => "users.name",
            Self::NoFreeUid { .. } => "users.uid",
            Self::UnknownGroup { .. } => "users.groups",
            Self::WifiPassphraseSource { .. } | Self::WifiKey { .. } => "network.interfaces.wifi",
            Self::OverlayOwner { .. } => "overlays.owner",
            Self::OverlayGroup { .. } => "overlays.group",
            Self::OverlayRead { .. } | Self::TemplateNotUtf8 { .. } | Self::Template(_) => {
                "overlays"
            }
            Self::HostKey(_) => "ssh.host_keys",
            Self::Firstboot(_) => "boot",
            Self::EnableLinks(_) => "services.enable",
        }
    }

    /// The recipe user the conflict is about, if any.
    #[must_use]
    pub fn user(&self) -> Option<&str> {
        match self {
            Self::PasswordSource { user, .. }
            | Self::PasswordHash { user, .. }
            | Self::UserExists { user }
            | Self::NoFreeUid { user }
            | Self::UnknownGroup { user, .. } => Some(user),
            _ => None,
        }
    }
}
