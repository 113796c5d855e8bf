//! From a validated recipe to one list of [`FileOp`](crate::ops::FileOp)s per node.
//!
//! Each submodule renders one concern (users, SSH, hosts, network, cloud-init, boot, mounts,
//! system settings) for an OS [`Profile`](profile::Profile) read from the base image. Settings are
//! baked into the root filesystem by default, so a node is right on its first boot whatever
//! the OS's first-boot mechanism does; seeds are written where the image reads them.

pub mod boot;
pub mod catalog;
pub mod cloud_init;
pub mod cluster;
mod error;
pub mod firstboot;
pub mod hosts;
pub mod image_checks;
pub mod network;
pub mod node;
pub mod preview;
pub mod profile;
pub mod redact;
pub mod ssh;
pub mod system;
pub mod template_secrets;
pub mod units;
pub mod user_checks;
pub mod users;
mod yaml;

pub use error::{NodeConflict, PlanError};
