//! The Raspberry Pi 4/5 bootloader EEPROM image (`pieeprom-*.bin`): its sections, and the
//! configuration file stored in one of them. The layout is described in `docs/eeprom.md`.

/// The sizes a bootloader image may have: 512 KiB (Pi 4 before 2020) and 2 MiB.
pub const VALID_SIZES: [usize; 2] = [512 * 1024, 2 * 1024 * 1024];
/// Every section header's magic, under [`MAGIC_MASK`].
pub const MAGIC: u32 = 0x55aa_f00f;
/// The bits of a magic that are the same for every section type.
pub const MAGIC_MASK: u32 = 0xffff_f00f;
/// A modifiable file (`bootconf.txt`, keys).
pub const FILE_MAGIC: u32 = 0x55aa_f11f;
/// Padding up to the next section.
pub const PAD_MAGIC: u32 = 0x55aa_feef;
/// Section header: magic and length, both big-endian.
const HDR_LEN: usize = 8;
/// A file section's name field, NUL-padded.
const NAME_LEN: usize = 12;
/// From a file section's start to its content: header, name, 4 reserved bytes.
const CONTENT_AT: usize = HDR_LEN + NAME_LEN + 4;
/// The flash erase unit; the image's last one is the bootloader's scratch space.
pub const ERASE_SIZE: usize = 4096;
/// The largest modifiable file: one erase unit minus its header.
pub const MAX_FILE_LEN: usize = ERASE_SIZE - (NAME_LEN + HDR_LEN);
/// Files that may be modified live in `[64 KiB, 64 KiB + 988 KiB)` (the first 64 KiB hold the
/// read-only boot code of A/B images).
const FILES_START: usize = 64 * 1024;
const FILES_END: usize = FILES_START + 988 * 1024;
/// The configuration file's name.
pub const BOOTCONF: &str = "bootconf.txt";

/// Why an image was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EepromError {
    /// Not a size bootloader images have.
    #[error("{0} bytes is not the size of a bootloader image (512 KiB or 2 MiB)")]
    Size(usize),
    /// A section header with a wrong magic.
    #[error(
        "no section header at byte {offset} (magic {magic:#010x}): not a bootloader image, or damaged"
    )]
    Corrupt {
        /// Where.
        offset: usize,
        /// What was there.
        magic: u32,
    },
    /// No `bootconf.txt` section.
    #[error("the bootloader image has no {BOOTCONF} section")]
    NoConfig,
    /// The new file does not fit.
    #[error("the new {BOOTCONF} is {len} bytes; at most {room} fit in its section")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The room.
        room: usize,
    },
}

/// One section: where it starts, its magic, its length (bytes after the header), and for a
/// file section its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Offset of the header.
    pub offset: usize,
    /// The magic.
    pub magic: u32,
    /// Bytes after the 8-byte header.
    pub length: usize,
    /// The file name ("" for other sections).
    pub name: String,
}

/// A bootloader image, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EepromImage {
    bytes: Vec<u8>,
    sections: Vec<Section>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl EepromImage {
    /// Parses `bytes`.
    ///
    /// # Errors
    /// A wrong size or a section header whose magic is wrong.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, EepromError> {
        if !VALID_SIZES.contains(&bytes.len()) {
            return Err(EepromError::Size(bytes.len()));
        }
        let mut sections = Vec::new();
        let mut offset = 0usize;
        while offset + HDR_LEN <= bytes.len() {
            let (Some(magic), Some(length)) = (be32(&bytes, offset), be32(&bytes, offset + 4))
            else {
                break;
            };
            if magic == 0 || magic == u32::MAX {
                break;
            }
            if magic & MAGIC_MASK != MAGIC {
                return Err(EepromError::Corrupt { offset, magic });
            }
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            let name = if magic == FILE_MAGIC {
                let raw = bytes
                    .get(offset + HDR_LEN..offset + HDR_LEN + NAME_LEN)
                    .unwrap_or(&[]);
                String::from_utf8_lossy(raw)
                    .trim_end_matches('\0')
                    .to_owned()
            } else {
                String::new()
            };
            sections.push(Section {
                offset,
                magic,
                length,
                name,
            });
            offset = offset
                .saturating_add(HDR_LEN)
                .saturating_add(length)
                .saturating_add(7)
                & !7;
        }
        Ok(Self { bytes, sections })
    }

    /// The sections, in order.
    #[must_use]
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The image bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The index of the modifiable file `name`.
    fn find(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|s| {
            s.magic == FILE_MAGIC && s.name == name && (FILES_START..FILES_END).contains(&s.offset)
        })
    }

    /// The content of the modifiable file `name`.
    #[must_use]
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        let s = &self.sections[self.find(name)?];
        let len = s.length.checked_sub(NAME_LEN + 4)?;
        self.bytes
            .get(s.offset + CONTENT_AT..s.offset + CONTENT_AT + len)
    }

    /// The configuration text.
    ///
    /// # Errors
    /// There is no `bootconf.txt`.
    pub fn config(&self) -> Result<String, EepromError> {
        self.file(BOOTCONF)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .ok_or(EepromError::NoConfig)
    }

    /// Replaces the content of `bootconf.txt` with `content`: the section's length is set,
    /// the bytes freed are erased (0xff), and the space up to the next section is covered by
    /// a padding section when it can hold one's header and the file is not the last section.
    ///
    /// # Errors
    /// No `bootconf.txt`, or `content` does not fit before the next section.
    pub fn set_config(&mut self, content: &[u8]) -> Result<(), EepromError> {
        let i = self.find(BOOTCONF).ok_or(EepromError::NoConfig)?;
        let at = self.sections[i].offset;
        let is_last = i + 1 == self.sections.len();
        let next = self.sections[i + 1..]
            .iter()
            .find(|s| s.magic != PAD_MAGIC)
            .map_or(self.bytes.len() - ERASE_SIZE, |s| s.offset);
        let room = next.saturating_sub(at + CONTENT_AT).min(MAX_FILE_LEN - 4);
        if content.len() > room {
            return Err(EepromError::TooLarge {
                len: content.len(),
                room,
            });
        }
        let new_len = u32::try_from(content.len() + NAME_LEN + 4).unwrap_or(u32::MAX);
        self.bytes[at + 4..at + 8].copy_from_slice(&new_len.to_be_bytes());
        let start = at + CONTENT_AT;
        self.bytes[start..start + content.len()].copy_from_slice(content);
        let mut pad = start + content.len();
        while !pad.is_multiple_of(8) {
            self.bytes[pad] = 0xff;
            pad += 1;
        }
        let mut gap = next.saturating_sub(pad);
        if gap >= HDR_LEN && !is_last {
            gap -= HDR_LEN;
            self.bytes[pad..pad + 4].copy_from_slice(&PAD_MAGIC.to_be_bytes());
            let len = u32::try_from(gap).unwrap_or(u32::MAX);
            self.bytes[pad + 4..pad + 8].copy_from_slice(&len.to_be_bytes());
            pad += HDR_LEN;
        }
        self.bytes[pad..pad + gap].fill(0xff);
        let bytes = std::mem::take(&mut self.bytes);
        *self = Self::parse(bytes)?;
        Ok(())
    }
}

/// A boot mode of `BOOT_ORDER` (one hex digit each, tried from the lowest digit up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    /// SD card (or eMMC of a Compute Module): 1.
    Sd,
    /// Network (TFTP): 2.
    Network,
    /// USB mass storage: 4.
    Usb,
    /// NVMe (Pi 5, CM4/CM5): 6.
    Nvme,
    /// HTTP boot: 7.
    Http,
}

impl BootMode {
    fn digit(self) -> char {
        match self {
            BootMode::Sd => '1',
            BootMode::Network => '2',
            BootMode::Usb => '4',
            BootMode::Nvme => '6',
            BootMode::Http => '7',
        }
    }
}

impl std::str::FromStr for BootMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "sd" | "emmc" => BootMode::Sd,
            "network" | "net" | "tftp" => BootMode::Network,
            "usb" => BootMode::Usb,
            "nvme" => BootMode::Nvme,
            "http" => BootMode::Http,
            other => {
                return Err(format!(
                    "unknown boot mode {other:?} (sd, emmc, usb, nvme, network, http)"
                ));
            }
        })
    }
}

/// The `BOOT_ORDER` value trying `modes` in order and then starting over (`0xf`).
#[must_use]
pub fn boot_order_value(modes: &[BootMode]) -> String {
    let digits: String = modes.iter().rev().map(|m| m.digit()).collect();
    format!("0xf{digits}")
}

/// `config` with `BOOT_ORDER` set to `value` for every board: the first `BOOT_ORDER` line
/// before any section header or in an `[all]` section is replaced; else a line is added at the
/// end of the first `[all]` section, or, without one, at the end of the lines before the first
/// header (which apply to all boards too). Other lines and sections are kept as they are.
#[must_use]
pub fn set_boot_order(config: &str, value: &str) -> String {
    let new = format!("BOOT_ORDER={value}");
    let mut lines: Vec<String> = config.lines().map(str::to_owned).collect();
    let is_header = |l: &str| l.trim_start().starts_with('[');
    let mut section: Option<String> = None;
    let mut found = None;
    for (i, l) in lines.iter().enumerate() {
        if is_header(l) {
            section = Some(l.trim().to_owned());
        } else if section.as_deref().is_none_or(|s| s == "[all]")
            && l.split('=').next().map(str::trim) == Some("BOOT_ORDER")
        {
            found = Some(i);
            break;
        }
    }
    if let Some(i) = found {
        lines[i] = new;
    } else {
        let next_header_after = |from: usize| {
            lines[from..]
                .iter()
                .position(|l| is_header(l))
                .map_or(lines.len(), |p| from + p)
        };
        let at = match lines.iter().position(|l| l.trim() == "[all]") {
            Some(h) => next_header_after(h + 1),
            None => next_header_after(0),
        };
        lines.insert(at, new);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The `.sig` file the bootloader checks an update image against: its sha256 in hex and the
/// update timestamp (what `rpi-eeprom-digest` writes without a key).
#[must_use]
pub fn signature(image: &[u8], timestamp: u64) -> String {
    format!(
        "{}\nts: {timestamp}\n",
        crate::io::hashing::Sha256Digest::of(image)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 2 MiB image laid out as the published format describes: a boot code section at 0,
    /// then at 64 KiB `bootconf.txt` followed by padding, a key file section, and the erased
    /// rest.
    pub(crate) fn sample(config: &str) -> Vec<u8> {
        let mut b = vec![0xffu8; 2 << 20];
        let mut put = |at: usize, magic: u32, name: Option<&str>, content: &[u8]| -> usize {
            let extra = if name.is_some() { NAME_LEN + 4 } else { 0 };
            let len = u32::try_from(content.len() + extra).unwrap();
            b[at..at + 4].copy_from_slice(&magic.to_be_bytes());
            b[at + 4..at + 8].copy_from_slice(&len.to_be_bytes());
            let mut c = at + HDR_LEN;
            if let Some(n) = name {
                b[c..c + NAME_LEN].fill(0);
                b[c..c + n.len()].copy_from_slice(n.as_bytes());
                b[c + NAME_LEN..c + NAME_LEN + 4].fill(0);
                c += NAME_LEN + 4;
            }
            b[c..c + content.len()].copy_from_slice(content);
            (c + content.len() + 7) & !7
        };
        let end = put(0, MAGIC, None, &[0xAB; 1000]);
        put(
            end,
            PAD_MAGIC,
            None,
            &vec![0xff; FILES_START - end - HDR_LEN],
        );
        let end = put(FILES_START, FILE_MAGIC, Some(BOOTCONF), config.as_bytes());
        let key_at = FILES_START + ERASE_SIZE;
        put(end, PAD_MAGIC, None, &vec![0xff; key_at - end - HDR_LEN]);
        put(key_at, FILE_MAGIC, Some("pubkey.bin"), &[7; 264]);
        b
    }

    #[test]
    fn config_round_trip_keeps_the_layout() {
        let config = "[all]\nBOOT_UART=0\nBOOT_ORDER=0xf41\nNET_INSTALL_AT_POWER_ON=1\n";
        let orig = sample(config);
        let mut img = EepromImage::parse(orig.clone()).unwrap();
        let names: Vec<_> = img.sections().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["", "", BOOTCONF, "", "pubkey.bin"]);
        assert_eq!(img.config().unwrap(), config);
        // The same text written back gives the same bytes.
        img.set_config(config.as_bytes()).unwrap();
        assert_eq!(img.bytes(), &orig[..]);

        let new = set_boot_order(&img.config().unwrap(), "0xf2416");
        assert_eq!(
            new,
            "[all]\nBOOT_UART=0\nBOOT_ORDER=0xf2416\nNET_INSTALL_AT_POWER_ON=1\n"
        );
        img.set_config(new.as_bytes()).unwrap();
        let again = EepromImage::parse(img.bytes().to_vec()).unwrap();
        assert_eq!(again.config().unwrap(), new);
        assert_eq!(again.file("pubkey.bin"), Some(&[7u8; 264][..]));
        assert_eq!(again.sections().len(), 5, "{:?}", again.sections());
        // Only the config's erase unit changed.
        let changed: Vec<usize> = orig
            .iter()
            .zip(again.bytes())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, _)| i / ERASE_SIZE)
            .collect();
        assert!(
            changed.iter().all(|&u| u == FILES_START / ERASE_SIZE),
            "{changed:?}"
        );

        // A shorter config: the freed bytes are erased, a padding section covers them.
        img.set_config(b"[all]\n").unwrap();
        let short = EepromImage::parse(img.bytes().to_vec()).unwrap();
        assert_eq!(short.config().unwrap(), "[all]\n");
        assert_eq!(short.sections()[3].magic, PAD_MAGIC);
        assert_eq!(short.file("pubkey.bin"), Some(&[7u8; 264][..]));
        let too_big = vec![b'#'; ERASE_SIZE];
        assert!(matches!(
            img.set_config(&too_big),
            Err(EepromError::TooLarge { .. })
        ));
    }

    #[test]
    fn refusals_table() {
        let mut bad = sample("[all]\n");
        bad[FILES_START] = 0x12;
        let cases: Vec<(&str, Vec<u8>, EepromError)> = vec![
            ("size", vec![0xff; 1000], EepromError::Size(1000)),
            (
                "magic",
                bad,
                EepromError::Corrupt {
                    offset: FILES_START,
                    magic: 0x12aa_f11f,
                },
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(EepromImage::parse(bytes).unwrap_err(), want, "{name}");
        }
        let mut no_conf = sample("[all]\n");
        no_conf[FILES_START + HDR_LEN] = b'x';
        let img = EepromImage::parse(no_conf).unwrap();
        assert_eq!(img.config().unwrap_err(), EepromError::NoConfig);
    }

    #[test]
    fn boot_order_table() {
        use BootMode::*;
        assert_eq!(boot_order_value(&[Nvme, Sd, Usb, Network]), "0xf2416");
        assert_eq!(boot_order_value(&[Sd]), "0xf1");
        assert_eq!("eMMC".parse::<BootMode>(), Ok(Sd));
        assert!("floppy".parse::<BootMode>().is_err());
        let cases = [
            (
                "replace",
                "[all]\nBOOT_ORDER=0xf41\n",
                "[all]\nBOOT_ORDER=0xf6\n",
            ),
            (
                "no header",
                "BOOT_UART=0\n",
                "BOOT_UART=0\nBOOT_ORDER=0xf6\n",
            ),
            (
                "before another section",
                "BOOT_UART=0\n[pi5]\nX=1\n",
                "BOOT_UART=0\nBOOT_ORDER=0xf6\n[pi5]\nX=1\n",
            ),
            (
                "other section's value kept",
                "[all]\nA=1\n[cm5]\nBOOT_ORDER=0xf1\n",
                "[all]\nA=1\nBOOT_ORDER=0xf6\n[cm5]\nBOOT_ORDER=0xf1\n",
            ),
            (
                "only another section",
                "[cm5]\nA=1\n",
                "BOOT_ORDER=0xf6\n[cm5]\nA=1\n",
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(set_boot_order(input, "0xf6"), want, "{name}");
        }
        let sig = signature(b"abc", 1_700_000_000);
        assert_eq!(
            sig,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\nts: 1700000000\n"
        );
    }
}
