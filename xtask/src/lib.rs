//! piimage's development tasks. The library part builds the test fixture images (see
//! [`fixtures`]); the main crate's tests use it as a dev-dependency:
//!
//! ```no_run
//! let raw = xtask::fixture_path(xtask::Fixture::Ubuntu2404, xtask::Format::Raw)?;
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod bootable;
pub mod demo;
pub mod fixtures;

pub use demo::{DEMO_FILE, DEMO_FIXTURE, demo_path, refresh_demo};
pub use fixtures::{
    BUILDER_VERSION, BuildOutcome, CloudInitInfo, EnabledUnit, Ext4Info, FatInfo, FirstBoot,
    Fixture, FixtureInfo, Format, INDEX_FILE, OsInfo, PartitionInfo, SECTOR_SIZE, UserInfo,
    build_fixtures, ensure_fixtures, fixture_path, fixtures_dir, info,
};
