//! The integration test binary: one module per feature.

mod engine;
mod ext4_write;
mod fat_write;
mod inspect;
mod source;
mod support;
