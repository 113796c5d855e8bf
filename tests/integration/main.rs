//! The integration test binary: one module per feature.

mod boot;
mod build;
mod cli;
mod configs;
mod demo;
mod eeprom;
mod engine;
mod errors;
mod ext4_grow;
mod ext4_write;
mod fat_write;
mod flash;
mod fuzz;
mod handoff;
mod hostile;
mod image_checks;
mod inspect;
mod manifest;
mod netboot;
mod output;
mod presets;
mod recipe;
mod secrets;
mod source;
mod support;
