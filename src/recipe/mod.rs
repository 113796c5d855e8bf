//! Recipes: the YAML a cluster builder writes, validated into one [`NodeSpec`] per node.
//!
//! ```text
//! recipe.yaml --load--> raw (serde, every value Located) --extends merge--> raw
//!             --resolve--> ResolvedRecipe { cluster, base, output, nodes: [NodeSpec] }
//! ```
//!
//! [`load`] reads the recipe and the files it `extends`, merges them (mappings key by key,
//! scalars and lists replaced; see `recipes/README.md`), expands node ranges and address pools, merges
//! each node's settings (recipe, then `roles.<role>`, then the node entry), and checks
//! everything that can be checked without opening an image: names, addresses, keys, hashes,
//! overlay trees and their templates. Every problem names `file:line:column: field`.
//! Nothing is written and no image is read or downloaded.
//!
//! The format is documented field by field in `recipes/README.md`.

mod checks;
mod ctx;
mod error;
mod fields;
mod keys;
mod load;
mod located;
mod merge;
mod net;
mod netboot;
mod network;
mod nodes;
mod overlay;
mod raw;
mod resolve;
mod schema;
mod secrets;
mod sections;
mod spec;
pub mod syntax;
pub mod template;
mod users;

use std::path::Path;

pub use ctx::LoadOptions;
pub use error::{Problem, RecipeError};
pub use located::Origin;
pub use schema::{SCHEMA_ID, json_schema};
pub use spec::{
    BootId, BootSpec, CloudInitMode, CloudInitSpec, ClusterSecret, ClusterSecretValue, ClusterSpec,
    ConfigLine, DEFAULT_EPOCH, DefaultUser, DerivedKind, EntryKind, HostEntry, HostKeys,
    InterfaceSpec, Ipv4Spec, Ipv6Mode, Ipv6Spec, KeyboardSpec, Medium, MountSpec, NetbootSpec,
    NetworkSpec, NodeAddress, NodeSpec, OutputFormat, OutputSpec, OverlayEntry, OverlaySpec,
    OverlayTarget, OwnerRef, OwnerSpec, PasswordScheme, PasswordSpec, ResolvedRecipe, SecretSource,
    ServicesSpec, SettingOrigins, SshSpec, Sudo, UserOrigins, UserSpec, WifiSecret, WifiSpec,
};

/// Loads, merges, expands and validates the recipe at `path` (see the module docs).
///
/// # Errors
/// Every problem found, each naming its file, line, column and field.
pub fn load(path: &Path, options: &LoadOptions) -> Result<ResolvedRecipe, RecipeError> {
    let loaded = load::load_chain(path)?;
    resolve::resolve(path, loaded, options)
}

impl ResolvedRecipe {
    /// Same as [`load`].
    ///
    /// # Errors
    /// See [`load`].
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self, RecipeError> {
        load(path, options)
    }
}
