//! piimage: build customised Raspberry Pi cluster node images from official images, without root.
//!
//! Data flows one way (see README.md, "Layout"):
//!
//! ```text
//! cli -> recipe -> plan -> pipeline -> image (a base opened once: layout, readers, facts)
//!                                      disk (source, partition table, windows, MBR writes)
//!                                      fs::fat, fs::ext4, output, io
//! ```
//!
//! Lower layers never import higher ones. `inspect` is a read-only report rendered from `image`.
#![forbid(unsafe_code)]
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    missing_debug_implementations
)]

pub mod build;
pub mod cancel;
mod civil;
pub mod cluster;
pub mod disk;
pub mod eeprom;
pub mod error;
pub mod flash;
pub mod fs;
pub mod fuzz;
pub mod image;
pub mod inspect;
pub mod io;
pub mod netboot;
pub mod ops;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod recipe;
pub mod secrets;
