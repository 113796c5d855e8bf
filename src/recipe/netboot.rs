//! Network boot fields: `netboot:` (the server) and the nodes' `serial:`/`mac:` (ranges:
//! `serials:`/`macs:`, one per member), checked whenever `output.formats` lists `netboot`.

use super::ctx::Ctx;
use super::error::Problems;
use super::located::{Located, Origin};
use super::raw::{RawNetboot, RawNode};
use super::spec::{BootId, NetbootSpec, NodeSpec, OutputFormat};

/// Default `netboot.export_root`: under it, one directory per node.
pub const DEFAULT_EXPORT_ROOT: &str = "/srv/nfs";
/// Default `netboot.tftp_root`.
pub const DEFAULT_TFTP_ROOT: &str = "/srv/tftp";
/// Default `netboot.dhcp_reply_delay` (seconds).
pub const DEFAULT_REPLY_DELAY: u32 = 1;
/// Largest `dhcp_reply_delay` dnsmasq takes (seconds).
pub const MAX_REPLY_DELAY: u32 = 60;

/// A board serial number as the bootloader prints it and names its TFTP directory: the last 8
/// hex digits, lowercase (a `10000000` prefix from `/proc/cpuinfo` is dropped).
pub fn serial(s: &str) -> Result<BootId, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_prefix("0x").unwrap_or(&t);
    let t = if t.len() == 16 && t.starts_with("10000000") {
        &t[8..]
    } else {
        t
    };
    if t.len() == 8 && t.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(BootId::Serial(t.to_owned()))
    } else {
        Err(format!(
            "{s:?} is not a board serial number: give its 8 hex digits, as the bootloader \
             shows them (e.g. 1a2b3c4d; `cat /sys/firmware/devicetree/base/serial-number` on \
             the board prints 16, of which the last 8 count)"
        ))
    }
}

/// An Ethernet MAC (`dc:a6:32:01:02:03` or with `-`), as the TFTP directory the bootloader asks
/// for with `TFTP_PREFIX=2`: lowercase, `-`-separated.
pub fn mac(s: &str) -> Result<BootId, String> {
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    if parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        Ok(BootId::Mac(parts.join("-").to_ascii_lowercase()))
    } else {
        Err(format!(
            "{s:?} is not a MAC address: write six two-digit hex bytes, e.g. dc:a6:32:01:02:03"
        ))
    }
}

/// The boot id of a single-node entry.
pub(crate) fn single(raw: &RawNode, problems: &mut Problems) -> Option<BootId> {
    for (list, one) in [(&raw.serials, "serial"), (&raw.macs, "mac")] {
        if let Some(l) = list {
            problems.add(
                &l.at,
                format!("`{one}s` is for ranges; a single node has `{one}`"),
            );
        }
    }
    match (&raw.serial, &raw.mac) {
        (Some(s), Some(m)) => {
            problems.add(
                &m.at,
                format!(
                    "a node has `serial` or `mac`, not both (serial {:?}): the bootloader uses \
                     one of them, as its TFTP_PREFIX says",
                    s.value
                ),
            );
            None
        }
        (Some(s), None) => checked(&s.value, &s.at, serial, problems),
        (None, Some(m)) => checked(&m.value, &m.at, mac, problems),
        (None, None) => None,
    }
}

fn checked(
    value: &str,
    at: &Origin,
    parse: fn(&str) -> Result<BootId, String>,
    problems: &mut Problems,
) -> Option<BootId> {
    match parse(value) {
        Ok(id) => Some(id),
        Err(e) => {
            problems.add(at, e);
            None
        }
    }
}

/// The boot ids of a range's `count` members (`None` each when the range sets none).
pub(crate) fn range(raw: &RawNode, count: usize, problems: &mut Problems) -> Vec<Option<BootId>> {
    for (one, many) in [(&raw.serial, "serials"), (&raw.mac, "macs")] {
        if let Some(o) = one {
            problems.add(
                &o.at,
                format!("a range takes `{many}` (one per node), not one value"),
            );
        }
    }
    let pick = match (&raw.serials, &raw.macs) {
        (Some(s), Some(m)) => {
            problems.add(
                &m.at,
                format!(
                    "a range has `serials` or `macs`, not both ({} serials given)",
                    s.value.len()
                ),
            );
            None
        }
        (Some(s), None) => Some((s, serial as fn(&str) -> Result<BootId, String>, "serials")),
        (None, Some(m)) => Some((m, mac as fn(&str) -> Result<BootId, String>, "macs")),
        (None, None) => None,
    };
    let Some((list, parse, name)) = pick else {
        return vec![None; count];
    };
    if list.value.len() != count {
        problems.add(
            &list.at,
            format!(
                "{} {name} for a range of {count} nodes; give one per node, in order",
                list.value.len()
            ),
        );
        return vec![None; count];
    }
    list.value
        .iter()
        .map(|item| checked(&item.value, &item.at, parse, problems))
        .collect()
}

fn absolute_dir(ctx: &mut Ctx, field: Option<&Located<String>>, default: &str) -> String {
    let Some(f) = field else {
        return default.to_owned();
    };
    let v = f.value.trim_end_matches('/');
    let ok = v.starts_with('/')
        && !v.is_empty()
        && v.split('/').all(|c| c != "." && c != "..")
        && !v.contains(|c: char| c.is_whitespace() || c.is_control() || c == ',' || c == '"');
    if !ok {
        ctx.problem(
            &f.at,
            format!(
                "{:?} is not a usable server directory: give an absolute path without `.`, \
                 `..`, spaces, commas or quotes (it goes into cmdline.txt, exports and dnsmasq)",
                f.value
            ),
        );
    }
    v.to_owned()
}

/// Resolves `netboot:` and checks that every node to build has a boot id, when `formats`
/// lists `netboot`; warns of nothing otherwise (the section is then unused).
pub(crate) fn section(
    ctx: &mut Ctx,
    raw: Option<&Located<RawNetboot>>,
    formats: &[OutputFormat],
    formats_at: Option<&Origin>,
    nodes: &[NodeSpec],
    top: &Origin,
) -> Option<NetbootSpec> {
    if !formats.contains(&OutputFormat::Netboot) {
        return None;
    }
    let Some(raw) = raw else {
        ctx.problem(
            formats_at.unwrap_or(top),
            "the netboot output needs a `netboot:` section: `netboot: { server: 10.0.0.1/24 }` \
             (the TFTP and NFS server's address on the nodes' network)",
        );
        return None;
    };
    let r = &raw.value;
    let (server, prefix) = match &r.server {
        None => {
            ctx.problem(
                &raw.at,
                "netboot needs `server`: the TFTP and NFS server's address with its network's \
                 prefix, e.g. 10.0.0.1/24",
            );
            return None;
        }
        Some(s) => match super::net::cidr(&s.value) {
            Ok(net) if net.addr().is_ipv4() => (net.addr(), net.prefix_len()),
            Ok(_) => {
                ctx.problem(
                    &s.at,
                    "the Raspberry Pi bootloader boots over IPv4 only: give an IPv4 server address",
                );
                return None;
            }
            Err(e) => {
                ctx.problem(
                    &s.at,
                    format!("{e}; write the server's address with its prefix, e.g. 10.0.0.1/24"),
                );
                return None;
            }
        },
    };
    let export_root = absolute_dir(ctx, r.export_root.as_ref(), DEFAULT_EXPORT_ROOT);
    let tftp_root = absolute_dir(ctx, r.tftp_root.as_ref(), DEFAULT_TFTP_ROOT);
    let reply_delay = match &r.dhcp_reply_delay {
        Some(d) if d.value > MAX_REPLY_DELAY => {
            ctx.problem(
                &d.at,
                format!(
                    "dhcp_reply_delay is {} seconds; dnsmasq takes 0 to {MAX_REPLY_DELAY}",
                    d.value
                ),
            );
            DEFAULT_REPLY_DELAY
        }
        Some(d) => d.value,
        None => DEFAULT_REPLY_DELAY,
    };
    let mut seen: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for n in nodes.iter().filter(|n| n.selected) {
        match &n.boot_id {
            None => ctx.problem(
                formats_at.unwrap_or(top),
                format!(
                    "node {:?} has no `serial:` (or `mac:`): the netboot output names each \
                     node's TFTP directory after its board",
                    n.name
                ),
            ),
            Some(id) => {
                if let Some(first) = seen.insert(id.dir_name(), &n.name) {
                    ctx.problem(
                        formats_at.unwrap_or(top),
                        format!(
                            "nodes {first:?} and {:?} have the same board id {}",
                            n.name,
                            id.dir_name()
                        ),
                    );
                }
            }
        }
    }
    Some(NetbootSpec {
        server,
        prefix,
        export_root,
        tftp_root,
        reply_delay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_and_macs() {
        for (input, want) in [
            ("1a2b3c4d", Some("1a2b3c4d")),
            ("1A2B3C4D", Some("1a2b3c4d")),
            ("0x1a2b3c4d", Some("1a2b3c4d")),
            ("100000001a2b3c4d", Some("1a2b3c4d")),
            ("1a2b3c4", None),
            ("1a2b3c4g", None),
            ("../etc/x", None),
            ("", None),
        ] {
            assert_eq!(
                serial(input).ok(),
                want.map(|w| BootId::Serial(w.to_owned())),
                "{input}"
            );
        }
        for (input, want) in [
            ("DC:A6:32:01:02:03", Some("dc-a6-32-01-02-03")),
            ("dc-a6-32-01-02-03", Some("dc-a6-32-01-02-03")),
            ("dc:a6:32:01:02", None),
            ("dc:a6:32:01:02:0x", None),
            ("dc:a6:32:01:02:003", None),
        ] {
            assert_eq!(
                mac(input).ok(),
                want.map(|w| BootId::Mac(w.to_owned())),
                "{input}"
            );
        }
    }
}
