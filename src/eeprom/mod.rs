//! The bootloader-update card (`piimage eeprom`): a small disk image whose FAT partition holds
//! `recovery.bin`, `pieeprom.upd` (the base image's own bootloader with its configuration
//! changed, e.g. `BOOT_ORDER`) and `pieeprom.sig`. A Raspberry Pi 4 or 5 booted from it
//! writes its EEPROM once; the node images themselves never carry an EEPROM update (applied at
//! every boot, those are known to cause boot loops). Format and flow: `docs/eeprom.md`.

pub mod card;
pub mod image;

use crate::fs::ext4::read::Ext4Reader;

pub use image::{BootMode, EepromError, EepromImage, boot_order_value, set_boot_order, signature};

/// The SoC whose bootloader is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chip {
    /// BCM2711: Pi 4, Pi 400, CM4.
    Bcm2711,
    /// BCM2712: Pi 5, Pi 500, CM5.
    Bcm2712,
}

impl Chip {
    /// The number in the firmware directory's name.
    #[must_use]
    pub fn number(self) -> &'static str {
        match self {
            Chip::Bcm2711 => "2711",
            Chip::Bcm2712 => "2712",
        }
    }
}

impl std::str::FromStr for Chip {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "pi4" | "2711" | "bcm2711" | "cm4" => Ok(Chip::Bcm2711),
            "pi5" | "2712" | "bcm2712" | "cm5" => Ok(Chip::Bcm2712),
            other => Err(format!("unknown board {other:?} (pi4, pi5)")),
        }
    }
}

/// The release channels looked in, in order.
pub const RELEASES: [&str; 2] = ["default", "latest"];

/// A bootloader found in a base image.
#[derive(Debug, Clone)]
pub struct Firmware {
    /// Where `pieeprom-*.bin` was found (a path in the root filesystem).
    pub image_path: String,
    /// Its bytes.
    pub pieeprom: Vec<u8>,
    /// `recovery.bin` from the same directory.
    pub recovery: Vec<u8>,
}

/// Why a bootloader-update card could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The base has no bootloader files for the chip.
    #[error(
        "the base image has no bootloader for BCM{chip} (looked for pieeprom-*.bin and recovery.bin in {dirs}): use a Raspberry Pi OS image, which ships them in the rpi-eeprom package"
    )]
    NoFirmware {
        /// The chip number.
        chip: &'static str,
        /// The directories looked in.
        dirs: String,
    },
    /// Reading the root filesystem failed.
    #[error("reading {path} in the base's root filesystem")]
    Read {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: crate::fs::ext4::superblock::Ext4Error,
    },
    /// The bootloader image is not valid or its configuration does not fit.
    #[error("{path}")]
    Image {
        /// The path in the base.
        path: String,
        /// Why.
        #[source]
        source: EepromError,
    },
    /// Building the FAT volume failed.
    #[error("building the card's FAT volume")]
    Fat(#[from] crate::fs::fat::FatError),
}

/// Finds the newest `pieeprom-*.bin` and its `recovery.bin` for `chip` in the root
/// filesystem: `/usr/lib/firmware/raspberrypi/bootloader-CHIP/{default,latest}/` (and the
/// same under `/lib`), the first channel that has both.
///
/// # Errors
/// None found, or a read error.
pub fn find_firmware(root: &Ext4Reader, chip: Chip) -> Result<Firmware, CardError> {
    let mut dirs = Vec::new();
    for prefix in ["/usr/lib", "/lib"] {
        for release in RELEASES {
            let dir = format!(
                "{prefix}/firmware/raspberrypi/bootloader-{}/{release}",
                chip.number()
            );
            let read_err = |path: &str| {
                let path = path.to_owned();
                move |source| CardError::Read { path, source }
            };
            let is_dir = root.is_dir(&dir).unwrap_or(false);
            dirs.push(dir.clone());
            if !is_dir {
                continue;
            }
            let mut names: Vec<String> = root
                .list(&dir)
                .map_err(read_err(&dir))?
                .into_iter()
                .filter(|n| n.starts_with("pieeprom-") && n.ends_with(".bin"))
                .collect();
            names.sort();
            let recovery_path = format!("{dir}/recovery.bin");
            let (Some(name), Some(recovery)) = (
                names.last(),
                root.read(&recovery_path)
                    .map_err(read_err(&recovery_path))?,
            ) else {
                continue;
            };
            let image_path = format!("{dir}/{name}");
            let Some(pieeprom) = root.read(&image_path).map_err(read_err(&image_path))? else {
                continue;
            };
            return Ok(Firmware {
                image_path,
                pieeprom,
                recovery,
            });
        }
    }
    Err(CardError::NoFirmware {
        chip: chip.number(),
        dirs: dirs.join(", "),
    })
}

/// The update files for `firmware` with `BOOT_ORDER` set to `modes`: `pieeprom.upd`, its
/// `pieeprom.sig` (stamped `timestamp`) and the new configuration text.
///
/// # Errors
/// The bootloader image is invalid, has no configuration, or the new one does not fit.
pub fn update_files(
    firmware: &Firmware,
    modes: &[BootMode],
    timestamp: u64,
) -> Result<(Vec<u8>, String, String), CardError> {
    let err = |source| CardError::Image {
        path: firmware.image_path.clone(),
        source,
    };
    let mut img = EepromImage::parse(firmware.pieeprom.clone()).map_err(err)?;
    let config = set_boot_order(&img.config().map_err(err)?, &boot_order_value(modes));
    img.set_config(config.as_bytes()).map_err(err)?;
    let bytes = img.bytes().to_vec();
    let sig = signature(&bytes, timestamp);
    Ok((bytes, sig, config))
}
