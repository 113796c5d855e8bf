//! A base image, opened once: its storage, where its boot and root filesystems are, readers
//! for both, and the facts read from them (OS, accounts, first-boot mechanism).
//!
//! `inspect` renders these facts, the plan's `Profile` derives from them, and `build`, `plan`
//! and `eeprom` open the base through [`BaseImage::open`]; none of them finds partitions or
//! reads `/etc/os-release` on its own.

pub mod accounts;
pub mod firstboot;
pub mod os;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::disk::{FileStorage, Partition, PartitionError, PartitionTable, Storage, Window};
use crate::fs::ext4::{Ext4Error, Ext4Reader};
use crate::fs::fat::{FatError, FatReader};
use crate::fs::{Filesystem, probe};
use crate::io::pin::{FilePin, PinError};

use os::OsInfo;

/// Why a base image cannot be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image could not be opened.
    #[error("cannot open {path}")]
    Open {
        /// The image.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The open file could not be pinned (its identity read).
    #[error(transparent)]
    Pin(#[from] PinError),
    /// The partition table is missing or invalid.
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// The FAT partition is unreadable.
    #[error("partition {partition} (FAT)")]
    Fat {
        /// Partition number.
        partition: u32,
        /// Why.
        source: FatError,
    },
    /// The ext4 partition is unreadable.
    #[error("partition {partition} (ext4)")]
    Ext4 {
        /// Partition number.
        partition: u32,
        /// Why.
        source: Ext4Error,
    },
    /// Reading a partition failed.
    #[error("reading partition {partition}")]
    Io {
        /// Partition number.
        partition: u32,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the boot and root filesystems of an image are.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The partition table.
    pub table: PartitionTable,
    /// The filesystem each partition of `table.partitions` holds, by its magic numbers.
    pub filesystems: Vec<Option<Filesystem>>,
    /// The first FAT partition.
    pub boot: Option<Partition>,
    /// The first ext4 partition.
    pub root: Option<Partition>,
}

impl Layout {
    /// Reads the partition table of `disk` and finds its filesystems.
    ///
    /// # Errors
    /// [`ImageError::Partition`] for a bad table, [`ImageError::Io`] naming the partition that
    /// could not be read.
    pub fn detect<S: Storage>(disk: &S) -> Result<Self, ImageError> {
        let table = PartitionTable::read(disk)?;
        let (mut boot, mut root) = (None, None);
        let mut filesystems = Vec::with_capacity(table.partitions.len());
        for p in &table.partitions {
            let fs = probe(disk, p).map_err(|source| ImageError::Io {
                partition: p.number,
                source,
            })?;
            match fs {
                Some(Filesystem::Vfat) if boot.is_none() => boot = Some(p.clone()),
                Some(Filesystem::Ext4) if root.is_none() => root = Some(p.clone()),
                _ => {}
            }
            filesystems.push(fs);
        }
        Ok(Self {
            table,
            filesystems,
            boot,
            root,
        })
    }
}

/// A window onto one partition of a base image.
pub type PartWindow = Window<Arc<dyn Storage>>;

/// A filesystem reader with the number of the partition it reads.
#[derive(Debug)]
pub struct Opened<R> {
    /// Partition number.
    pub partition: u32,
    /// The reader.
    pub reader: R,
}

/// What the boot partition says about how the image boots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootFacts {
    /// The tokens of `cmdline.txt` (`None`: there is none).
    pub cmdline: Option<Vec<String>>,
    /// The names in the partition's root directory.
    pub files: Vec<String>,
    /// The names in its `overlays/` directory (`None`: it has none).
    pub overlays: Option<Vec<String>>,
}

impl BootFacts {
    /// Reads them from the boot filesystem.
    ///
    /// # Errors
    /// The FAT reader's errors.
    pub fn read<D: std::io::Read + std::io::Seek>(fat: &FatReader<D>) -> Result<Self, FatError> {
        let cmdline = fat.read("cmdline.txt")?.map(|c| {
            String::from_utf8_lossy(&c)
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        });
        Ok(Self {
            cmdline,
            files: fat.root_names()?,
            overlays: fat.list("overlays")?,
        })
    }

    /// The `cmdline.txt` tokens, none when there is no `cmdline.txt`.
    pub fn cmdline_tokens(&self) -> &[String] {
        self.cmdline.as_deref().unwrap_or_default()
    }
}

/// The OS of a root filesystem: `/etc/os-release` (or `/usr/lib/os-release`) with
/// `/etc/rpi-issue`; `None` when neither os-release exists.
///
/// # Errors
/// A read error of any of those files (an unreadable file is not taken as absent).
pub fn os_info(root: &Ext4Reader) -> Result<Option<OsInfo>, Ext4Error> {
    let release = match root.read_text("/etc/os-release")? {
        Some(t) => Some(t),
        None => root.read_text("/usr/lib/os-release")?,
    };
    let Some(release) = release else {
        return Ok(None);
    };
    let issue = root.read_text("/etc/rpi-issue")?;
    Ok(Some(OsInfo::from_files(&release, issue.as_deref())))
}

/// A root filesystem read with `ext4-view`, as first-boot detection sees it (read errors
/// count as absent).
impl firstboot::RootProbe for Ext4Reader {
    fn exists(&self, path: &str) -> bool {
        Ext4Reader::exists(self, path).unwrap_or(false)
    }
    fn read_text(&self, path: &str) -> Option<String> {
        Ext4Reader::read_text(self, path).ok().flatten()
    }
    fn list(&self, path: &str) -> Vec<String> {
        Ext4Reader::list(self, path).unwrap_or_default()
    }
}

/// A window onto partition `p` of `storage`.
///
/// # Errors
/// [`ImageError::Io`] when the partition lies outside the image.
pub fn window(storage: &Arc<dyn Storage>, p: &Partition) -> Result<PartWindow, ImageError> {
    p.window(Arc::clone(storage))
        .map_err(|source| ImageError::Io {
            partition: p.number,
            source,
        })
}

/// A FAT reader on partition `p` of `storage`.
///
/// # Errors
/// [`ImageError::Fat`] naming the partition.
pub fn open_fat(
    storage: &Arc<dyn Storage>,
    p: &Partition,
) -> Result<Opened<FatReader<PartWindow>>, ImageError> {
    let reader = FatReader::open(window(storage, p)?).map_err(|source| ImageError::Fat {
        partition: p.number,
        source,
    })?;
    Ok(Opened {
        partition: p.number,
        reader,
    })
}

/// An ext4 reader on partition `p` of `storage`.
///
/// # Errors
/// [`ImageError::Ext4`] naming the partition.
pub fn open_ext4(
    storage: &Arc<dyn Storage>,
    p: &Partition,
) -> Result<Opened<Ext4Reader>, ImageError> {
    let reader = Ext4Reader::open(window(storage, p)?).map_err(|source| ImageError::Ext4 {
        partition: p.number,
        source,
    })?;
    Ok(Opened {
        partition: p.number,
        reader,
    })
}

/// A raw base image file, opened read-only and pinned, with its layout.
pub struct BaseImage {
    path: PathBuf,
    storage: Arc<dyn Storage>,
    layout: Layout,
    pin: FilePin,
}

impl std::fmt::Debug for BaseImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseImage")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl BaseImage {
    /// Opens the raw image at `path` read-only, records its identity ([`FilePin`]) and reads
    /// its partition table and filesystem kinds.
    ///
    /// # Errors
    /// See [`ImageError`].
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let open = |source| ImageError::Open {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(open)?;
        let pin = FilePin::new(path, &file)?;
        let storage: Arc<dyn Storage> =
            Arc::new(FileStorage::from_read_only_file(file, path).map_err(open)?);
        let layout = Layout::detect(&storage)?;
        Ok(Self {
            path: path.to_owned(),
            storage,
            layout,
            pin,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The image's bytes.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Where its filesystems are.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The file as it was opened.
    pub fn pin(&self) -> &FilePin {
        &self.pin
    }

    /// Its parts: path, storage, layout, pin.
    pub fn into_parts(self) -> (PathBuf, Arc<dyn Storage>, Layout, FilePin) {
        (self.path, self.storage, self.layout, self.pin)
    }

    /// A FAT reader on partition `p`.
    ///
    /// # Errors
    /// See [`open_fat`].
    pub fn fat(&self, p: &Partition) -> Result<Opened<FatReader<PartWindow>>, ImageError> {
        open_fat(&self.storage, p)
    }

    /// An ext4 reader on partition `p`.
    ///
    /// # Errors
    /// See [`open_ext4`].
    pub fn ext4(&self, p: &Partition) -> Result<Opened<Ext4Reader>, ImageError> {
        open_ext4(&self.storage, p)
    }

    /// The boot filesystem's reader (`None`: the image has no FAT partition).
    ///
    /// # Errors
    /// See [`Self::fat`].
    pub fn boot(&self) -> Result<Option<Opened<FatReader<PartWindow>>>, ImageError> {
        self.layout.boot.as_ref().map(|p| self.fat(p)).transpose()
    }

    /// The root filesystem's reader (`None`: the image has no ext4 partition).
    ///
    /// # Errors
    /// See [`Self::ext4`].
    pub fn root(&self) -> Result<Option<Opened<Ext4Reader>>, ImageError> {
        self.layout.root.as_ref().map(|p| self.ext4(p)).transpose()
    }

    /// The boot partition's facts (empty when there is no boot partition).
    ///
    /// # Errors
    /// [`ImageError::Fat`] naming the partition.
    pub fn boot_facts(&self) -> Result<BootFacts, ImageError> {
        let Some(boot) = self.boot()? else {
            return Ok(BootFacts::default());
        };
        BootFacts::read(&boot.reader).map_err(|source| ImageError::Fat {
            partition: boot.partition,
            source,
        })
    }
}
