//! `piimage eeprom`: the one-time bootloader-update card (boot order) for a Pi 4 or Pi 5.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use piimage::eeprom::{self, BootMode, Chip, card};

use super::GlobalArgs;
use super::progress::Bars;

/// Arguments of `piimage eeprom`.
#[derive(Debug, Args)]
pub struct EepromArgs {
    /// The base image (any format) whose rpi-eeprom files are used, e.g. the recipe's base.
    #[arg(long, value_name = "IMAGE")]
    pub base: PathBuf,

    /// Boot modes in the order tried, comma-separated: sd (or emmc), usb, nvme, network, http.
    #[arg(long, value_name = "MODES", value_delimiter = ',', required = true)]
    pub boot_order: Vec<BootMode>,

    /// The board family: pi5 (Pi 5, Pi 500, CM5) or pi4 (Pi 4, Pi 400, CM4).
    #[arg(long, value_name = "BOARD", default_value = "pi5")]
    pub board: Chip,

    /// The card image to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// The update timestamp in pieeprom.sig and the files' times (seconds since 1970; default
    /// SOURCE_DATE_EPOCH, else now).
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<u64>,
}

/// Runs `piimage eeprom`.
pub fn run(args: &EepromArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let ts = args.timestamp.unwrap_or_else(|| {
        std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            })
    });
    let bars = Bars::new(global.quiet);
    let spec = piimage::disk::source::BaseSpec::parse(&args.base.to_string_lossy(), None)?;
    let base = piimage::disk::source::resolve(&spec, &global.cache()?, &bars)?;
    let image = piimage::image::BaseImage::open(&base.raw_path)
        .with_context(|| args.base.display().to_string())?;
    let root = image
        .root()
        .with_context(|| args.base.display().to_string())?
        .with_context(|| format!("{}: no ext4 root partition", args.base.display()))?;
    let reader = root.reader;
    let firmware = eeprom::find_firmware(&reader, args.board)
        .with_context(|| args.base.display().to_string())?;
    let (upd, sig, config) = eeprom::update_files(&firmware, &args.boot_order, ts)?;
    let id = u32::from_le_bytes(
        piimage::io::hashing::Sha256Digest::of(&upd).as_bytes()[..4]
            .try_into()
            .unwrap_or([0; 4]),
    );
    let img = card::build_card(
        &[
            ("recovery.bin", &firmware.recovery),
            ("pieeprom.upd", &upd),
            ("pieeprom.sig", sig.as_bytes()),
        ],
        ts,
        id,
    )?;
    std::fs::write(&args.out, &img).with_context(|| format!("writing {}", args.out.display()))?;
    let order = config
        .lines()
        .find(|l| l.starts_with("BOOT_ORDER="))
        .unwrap_or("");
    println!(
        "wrote {} ({} bytes): {order} from {}; flash it (piimage flash), boot the board from it once, wait until the green LED blinks rapidly without stopping, then power off",
        args.out.display(),
        img.len(),
        firmware.image_path
    );
    Ok(())
}
