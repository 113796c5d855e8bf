//! The integration test binary: one module per feature.

mod fat_write;
mod source;
mod support;
