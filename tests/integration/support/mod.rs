//! The one test harness: [`cmd::Piimage`] runs the binary, [`oracle`] runs the real tools that
//! serve as oracles, [`tmp`] gives each test a directory of its own.

#![allow(dead_code)]

pub mod cmd;
pub mod oracle;
pub mod tmp;

pub use cmd::{Piimage, stderr, stdout, text};
pub use oracle::*;
pub use tmp::tmp;
