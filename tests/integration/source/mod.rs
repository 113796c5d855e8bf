//! Image sources: local files, compression formats, the download cache and bad input.
//!
//! Compressed test data is made by the real `xz`, `gzip` and `zstd` tools. Downloads come from
//! a small HTTP/1.1 server on 127.0.0.1 that serves a fixed number of requests. Every test uses
//! its own temporary cache (`Cache::at`), never the user's.

mod data;
mod download;
mod local;
mod server;
