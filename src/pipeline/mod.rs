//! Per node: a copy-on-write disk over the base, the node's operations applied to it, then
//! (with the output pipeline) streamed to the outputs.

pub mod apply;
pub mod grow;
pub mod identity;
pub mod node;

pub use crate::image::Layout;
pub use node::{NodeError, apply_node};
