//! Reading files from a FAT partition window through `hadris-fat`.

use std::io::{Read, Seek};

use hadris_fat::{FatVolume, FatVolumeReadExt};

use super::boot_sector::{BootSector, FatError};

/// A read-only view of a FAT volume.
pub struct FatReader<D: Read + Seek> {
    volume: FatVolume<D>,
    boot: BootSector,
}

impl<D: Read + Seek> std::fmt::Debug for FatReader<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatReader")
            .field("boot", &self.boot)
            .finish_non_exhaustive()
    }
}

fn lib_err(path: &str, e: impl std::fmt::Display) -> FatError {
    FatError::Library {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

impl<D: Read + Seek> FatReader<D> {
    /// Opens the FAT volume at the start of `data`.
    pub fn open(mut data: D) -> Result<Self, FatError> {
        let mut sector = [0u8; 512];
        data.seek(std::io::SeekFrom::Start(0))?;
        data.read_exact(&mut sector)?;
        let boot = BootSector::from_bytes(&sector)?;
        super::chains::check_chains(&mut data, &super::table::FatLayout::new(&boot))?;
        data.seek(std::io::SeekFrom::Start(0))?;
        let volume = FatVolume::open(data).map_err(|e| lib_err("/", e))?;
        Ok(Self { volume, boot })
    }

    /// The decoded boot sector.
    pub fn boot_sector(&self) -> &BootSector {
        &self.boot
    }

    /// Reads the file at `path` (`/`-separated, from the volume root). `Ok(None)` when it does
    /// not exist; names match case-insensitively, as the firmware and Linux vfat do.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, FatError> {
        let mut dir = self.volume.root_dir();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some((last, dirs)) = parts.split_last() else {
            return Ok(None);
        };
        for part in dirs {
            match dir.find(part).map_err(|e| lib_err(path, e))? {
                Some(e) if e.is_directory() => {
                    dir = dir.open_entry(&e).map_err(|e| lib_err(path, e))?;
                }
                _ => return Ok(None),
            }
        }
        let Some(entry) = dir.find(last).map_err(|e| lib_err(path, e))? else {
            return Ok(None);
        };
        if entry.is_directory() {
            return Ok(None);
        }
        let mut reader = self
            .volume
            .read_file(&entry)
            .map_err(|e| lib_err(path, e))?;
        let data = reader.read_to_vec().map_err(|e| lib_err(path, e))?;
        Ok(Some(data))
    }

    /// Names of the entries of the directory at `path` (long names where present, without
    /// `.` and `..`); `Ok(None)` when there is no such directory. Names match
    /// case-insensitively on the way there.
    pub fn list(&self, path: &str) -> Result<Option<Vec<String>>, FatError> {
        let mut dir = self.volume.root_dir();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            match dir.find(part).map_err(|e| lib_err(path, e))? {
                Some(e) if e.is_directory() => {
                    dir = dir.open_entry(&e).map_err(|e| lib_err(path, e))?;
                }
                _ => return Ok(None),
            }
        }
        let mut it = dir.entries();
        let mut names = Vec::new();
        while let Some(entry) = it.next_entry() {
            let hadris_fat::DirectoryEntry::Entry(e) = entry.map_err(|e| lib_err(path, e))?;
            let name = e.name().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        Ok(Some(names))
    }

    /// The entries of the directory at `path` with whether each is a directory (long names
    /// where present, without `.` and `..`, in directory order); `Ok(None)` when there is no
    /// such directory.
    pub fn entries(&self, path: &str) -> Result<Option<Vec<(String, bool)>>, FatError> {
        let mut dir = self.volume.root_dir();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            match dir.find(part).map_err(|e| lib_err(path, e))? {
                Some(e) if e.is_directory() => {
                    dir = dir.open_entry(&e).map_err(|e| lib_err(path, e))?;
                }
                _ => return Ok(None),
            }
        }
        let mut it = dir.entries();
        let mut out = Vec::new();
        while let Some(entry) = it.next_entry() {
            let hadris_fat::DirectoryEntry::Entry(e) = entry.map_err(|e| lib_err(path, e))?;
            let name = e.name().into_owned();
            if name != "." && name != ".." && !e.attributes().is_volume_label_entry() {
                out.push((name, e.is_directory()));
            }
        }
        Ok(Some(out))
    }

    /// Names of the entries of the root directory (long names where present).
    pub fn root_names(&self) -> Result<Vec<String>, FatError> {
        let root = self.volume.root_dir();
        let mut it = root.entries();
        let mut names = Vec::new();
        while let Some(entry) = it.next_entry() {
            let hadris_fat::DirectoryEntry::Entry(e) = entry.map_err(|e| lib_err("/", e))?;
            names.push(e.name().into_owned());
        }
        Ok(names)
    }
}
