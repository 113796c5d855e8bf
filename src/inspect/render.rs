//! The human-readable form of an inspect [`Report`].

use std::fmt::Write;

use super::Report;

/// Formats a byte count with binary units (`512 MiB`, `1.5 GiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut whole = n;
    let mut rem = 0;
    while whole >= 1024 && unit + 1 < UNITS.len() {
        rem = whole % 1024;
        whole /= 1024;
        unit += 1;
    }
    if rem == 0 || whole >= 100 {
        format!("{whole} {}", UNITS[unit])
    } else {
        format!("{whole}.{} {}", rem * 10 / 1024, UNITS[unit])
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Renders the report as aligned text.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let _ = write(r, &mut o);
    o
}

fn write(r: &Report, o: &mut String) -> std::fmt::Result {
    let img = &r.image;
    write!(o, "{:<12}{}", "Image", img.origin)?;
    if img.compression != "raw" {
        write!(
            o,
            " ({}, decompressed to {})",
            img.compression, img.raw_path
        )?;
    }
    writeln!(o, ", {}", human_bytes(img.size))?;
    if r.root.is_none() {
        writeln!(o, "{:<12}no ext4 root partition found", "OS")?;
    }
    match &r.os {
        Some(os) => {
            let pretty = os.pretty_name.as_deref().unwrap_or(&os.id);
            writeln!(o, "{:<12}{} ({pretty})", "OS", os.family)?;
            if let Some(issue) = &os.rpi_issue {
                writeln!(o, "{:<12}{issue}", "")?;
            }
        }
        None if r.root.is_some() => writeln!(o, "{:<12}unknown (no /etc/os-release)", "OS")?,
        None => {}
    }
    if r.root.is_some() {
        writeln!(
            o,
            "{:<12}{}",
            "Hostname",
            r.hostname.as_deref().unwrap_or("(none)")
        )?;
    }
    if r.users.is_empty() && r.root.is_some() {
        writeln!(o, "{:<12}(no regular users)", "Users")?;
    }
    for (i, u) in r.users.iter().enumerate() {
        let head = if i == 0 { "Users" } else { "" };
        writeln!(
            o,
            "{head:<12}{} (uid {}, gid {}, {}, groups: {})",
            u.name,
            u.uid,
            u.gid,
            u.shell,
            if u.groups.is_empty() {
                "-".to_owned()
            } else {
                u.groups.join(",")
            }
        )?;
    }
    if let Some(fb) = &r.first_boot {
        writeln!(o, "{:<12}{}", "First boot", fb.mechanism)?;
        writeln!(
            o,
            "{:<12}resize: {}, cloud-init: {}{}",
            "",
            yes(fb.resize),
            yes(fb.cloud_init),
            fb.cloud_init_seed
                .as_ref()
                .map(|s| format!(" (seed: {s})"))
                .unwrap_or_default()
        )?;
        if !fb.boot_seed_files.is_empty() {
            writeln!(
                o,
                "{:<12}seed files on boot: {}",
                "",
                fb.boot_seed_files.join(", ")
            )?;
        }
        if !fb.enabled_units.is_empty() {
            writeln!(o, "{:<12}enabled: {}", "", fb.enabled_units.join(", "))?;
        }
    }

    let t = &r.partition_table;
    writeln!(o, "\nPartition table: {}, disk id {}", t.kind, t.disk_id)?;
    for w in &t.warnings {
        writeln!(o, "  warning: {w}")?;
    }
    writeln!(
        o,
        "  {:>2}  {:>10}  {:>10}  {:>9}  {:<22}  {:<5}  {:<12}  PARTUUID",
        "#", "start", "sectors", "size", "type", "fs", "label"
    )?;
    for p in &t.partitions {
        let fs = match p.filesystem {
            Some(super::Filesystem::Vfat) => "vfat",
            Some(super::Filesystem::Ext4) => "ext4",
            None => "-",
        };
        writeln!(
            o,
            "  {:>2}  {:>10}  {:>10}  {:>9}  {:<22}  {:<5}  {:<12}  {}",
            p.number,
            p.start_sector,
            p.sectors,
            human_bytes(p.size),
            format!("{} {}", p.ptype, p.type_name),
            fs,
            p.label.as_deref().unwrap_or("-"),
            p.partuuid
        )?;
    }

    if let Some(b) = &r.boot {
        writeln!(
            o,
            "\nBoot (p{}): {}, label {}, {}-byte clusters, volume id {}",
            b.partition, b.fat_type, b.label, b.cluster_size, b.volume_id
        )?;
        match &b.cmdline {
            Some(c) => writeln!(o, "  cmdline.txt  {}", c.join(" "))?,
            None => writeln!(o, "  cmdline.txt  (missing)")?,
        }
        match &b.config_txt {
            Some(sections) => {
                for (i, s) in sections.iter().filter(|s| !s.lines.is_empty()).enumerate() {
                    let head = if i == 0 { "config.txt" } else { "" };
                    let name = if s.name.is_empty() {
                        String::new()
                    } else {
                        format!("[{}] ", s.name)
                    };
                    writeln!(o, "  {head:<11}  {name}{}", s.lines.join("; "))?;
                }
            }
            None => writeln!(o, "  config.txt   (missing)")?,
        }
    }
    if let Some(rt) = &r.root {
        writeln!(
            o,
            "\nRoot (p{}): ext4, label {}, {}-byte blocks, {} free of {}, state {}, journal {}{}",
            rt.partition,
            if rt.label.is_empty() { "-" } else { &rt.label },
            rt.block_size,
            human_bytes(rt.free_bytes),
            human_bytes(rt.blocks * u64::from(rt.block_size)),
            rt.state,
            rt.journal,
            if rt.orphans { ", orphans pending" } else { "" }
        )?;
        writeln!(o, "  features  {}", rt.features.join(" "))?;
        writeln!(o, "  uuid      {}", rt.uuid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes() {
        for (n, want) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1 KiB"),
            (1536, "1.5 KiB"),
            (512 << 20, "512 MiB"),
            (5_368_709_120 + (512 << 20), "5.5 GiB"),
        ] {
            assert_eq!(human_bytes(n), want);
        }
    }
}
