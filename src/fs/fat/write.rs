//! Writing files into a FAT partition window through `hadris-fat`.
//!
//! Timestamps come from a fixed clock (the build's epoch), so the same edits give the same
//! bytes. `hadris-fat` writes 8.3-fitting lower-case names (`config.txt`, `cmdline.txt`) as short
//! entries with the NT case bits, as Linux's vfat does, and long names (`user-data`,
//! `network-config`) with VFAT long-name entries; the firmware and Linux both read either.
//! [`FatWriter::finish`] must be called: it writes FSInfo and flushes.

use std::io::{Read, Seek, Write};

use hadris_fat::time::{FatDateTime, TimeProvider};
use hadris_fat::{FatVolume, FatVolumeReadExt, FatVolumeWriteExt};

use super::boot_sector::FatError;

/// A clock that always says the same time.
#[derive(Debug)]
struct FixedClock(FatDateTime);

impl TimeProvider for FixedClock {
    fn now(&self) -> FatDateTime {
        self.0
    }
}

/// Converts seconds since the Unix epoch (UTC) to a FAT timestamp, clamped to FAT's
/// 1980..=2107 range.
pub fn fat_time(unix: u64) -> FatDateTime {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (year, month, day) = crate::civil::civil_from_days(days);
    if year < 1980 {
        return FatDateTime::EPOCH;
    }
    if year > 2107 {
        return FatDateTime::new(2107, 12, 31, 23, 59, 58);
    }
    FatDateTime::new(
        u16::try_from(year).unwrap_or(2107),
        u8::try_from(month).unwrap_or(12),
        u8::try_from(day).unwrap_or(31),
        u8::try_from(secs / 3600).unwrap_or(0),
        u8::try_from(secs / 60 % 60).unwrap_or(0),
        u8::try_from(secs % 60).unwrap_or(0),
    )
}

fn lib_err(path: &str, e: impl std::fmt::Display) -> FatError {
    FatError::Library {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

fn split(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// A writable FAT volume.
pub struct FatWriter<D: Read + Write + Seek> {
    volume: FatVolume<D>,
}

impl<D: Read + Write + Seek> std::fmt::Debug for FatWriter<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatWriter").finish_non_exhaustive()
    }
}

/// The clock for `epoch`. hadris-fat keeps a `&'static` clock, so each is allocated once and
/// kept for the life of the process: one per distinct epoch (a build has one), not one per
/// opened volume (the fuzz target's leak check found the per-volume leak).
fn clock_for(epoch: u64) -> &'static FixedClock {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CLOCKS: OnceLock<Mutex<HashMap<u64, &'static FixedClock>>> = OnceLock::new();
    let mut clocks = CLOCKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    clocks
        .entry(epoch)
        .or_insert_with(|| Box::leak(Box::new(FixedClock(fat_time(epoch)))))
}

impl<D: Read + Write + Seek> FatWriter<D> {
    /// Opens the volume at the start of `data`; new and changed entries get time `epoch`
    /// (seconds since 1970, UTC).
    pub fn open(mut data: D, epoch: u64) -> Result<Self, FatError> {
        let mut sector = [0u8; 512];
        data.seek(std::io::SeekFrom::Start(0))?;
        data.read_exact(&mut sector)?;
        let boot = super::boot_sector::BootSector::from_bytes(&sector)?;
        super::chains::check_chains(&mut data, &super::table::FatLayout::new(&boot))?;
        data.seek(std::io::SeekFrom::Start(0))?;
        let clock = clock_for(epoch);
        let volume = FatVolume::builder(data)
            .time_provider(clock)
            .open()
            .map_err(|e| lib_err("/", e))?;
        Ok(Self { volume })
    }

    fn dir_of(
        &self,
        parts: &[&str],
        create: bool,
        path: &str,
    ) -> Result<Option<hadris_fat::FatDir<'_, D>>, FatError> {
        let mut dir = self.volume.root_dir();
        for part in parts {
            match dir.find(part).map_err(|e| lib_err(path, e))? {
                Some(e) if e.is_directory() => {
                    dir = dir.open_entry(&e).map_err(|e| lib_err(path, e))?;
                }
                Some(_) => {
                    return Err(lib_err(path, format!("{part} is a file, not a directory")));
                }
                None if create => {
                    dir = self
                        .volume
                        .create_dir(&dir, part)
                        .map_err(|e| lib_err(path, e))?;
                }
                None => return Ok(None),
            }
        }
        Ok(Some(dir))
    }

    /// Creates the directory `path` and its parents as needed.
    pub fn mkdir_p(&self, path: &str) -> Result<(), FatError> {
        self.dir_of(&split(path), true, path).map(|_| ())
    }

    /// Writes `data` as the file at `path`, creating parent directories and replacing any
    /// existing file.
    pub fn write_file(&self, path: &str, data: &[u8]) -> Result<(), FatError> {
        let parts = split(path);
        let Some((name, parents)) = parts.split_last() else {
            return Err(lib_err(path, "empty file name"));
        };
        let dir = self
            .dir_of(parents, true, path)?
            .ok_or_else(|| lib_err(path, "parent directory missing"))?;
        let entry = match dir.find(name).map_err(|e| lib_err(path, e))? {
            Some(e) if e.is_directory() => {
                return Err(lib_err(path, "is a directory"));
            }
            Some(e) => {
                self.volume.truncate(&e, 0).map_err(|e| lib_err(path, e))?;
                dir.find(name)
                    .map_err(|e| lib_err(path, e))?
                    .ok_or_else(|| lib_err(path, "vanished after truncation"))?
            }
            None => self
                .volume
                .create_file(&dir, name)
                .map_err(|e| lib_err(path, e))?,
        };
        let mut w = self
            .volume
            .write_file(&entry)
            .map_err(|e| lib_err(path, e))?;
        let mut done = 0;
        while done < data.len() {
            let n = w.write(&data[done..]).map_err(|e| lib_err(path, e))?;
            if n == 0 {
                return Err(lib_err(path, "no space left on the FAT volume"));
            }
            done += n;
        }
        w.finish().map_err(|e| lib_err(path, e))
    }

    /// Reads the file at `path`; `Ok(None)` when missing.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, FatError> {
        let parts = split(path);
        let Some((name, parents)) = parts.split_last() else {
            return Ok(None);
        };
        let Some(dir) = self.dir_of(parents, false, path)? else {
            return Ok(None);
        };
        match dir.find(name).map_err(|e| lib_err(path, e))? {
            Some(e) if !e.is_directory() => {
                let mut r = self.volume.read_file(&e).map_err(|e| lib_err(path, e))?;
                Ok(Some(r.read_to_vec().map_err(|e| lib_err(path, e))?))
            }
            _ => Ok(None),
        }
    }

    /// Removes the file (or empty directory) at `path`; `Ok(false)` when it did not exist.
    pub fn remove(&self, path: &str) -> Result<bool, FatError> {
        let parts = split(path);
        let Some((name, parents)) = parts.split_last() else {
            return Err(lib_err(path, "cannot remove the root directory"));
        };
        let Some(dir) = self.dir_of(parents, false, path)? else {
            return Ok(false);
        };
        match dir.find(name).map_err(|e| lib_err(path, e))? {
            Some(e) => {
                self.volume.delete(&e).map_err(|e| lib_err(path, e))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Writes FSInfo, flushes, and gives back the underlying data.
    pub fn finish(self) -> Result<D, FatError> {
        self.volume.sync().map_err(|e| lib_err("/", e))?;
        Ok(self.volume.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_to_fat_time() {
        let cases = [
            (0, FatDateTime::EPOCH),
            (315_532_800, FatDateTime::new(1980, 1, 1, 0, 0, 0)),
            (1_700_000_000, FatDateTime::new(2023, 11, 14, 22, 13, 20)),
            (951_782_400, FatDateTime::new(2000, 2, 29, 0, 0, 0)),
            (u64::MAX / 4, FatDateTime::new(2107, 12, 31, 23, 59, 58)),
        ];
        for (unix, want) in cases {
            let got = fat_time(unix);
            assert_eq!((got.date, got.time), (want.date, want.time), "{unix}");
        }
    }
}
