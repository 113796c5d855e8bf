//! Network settings: NetworkManager keyfiles on Raspberry Pi OS (Bookworm and later), netplan
//! on Ubuntu.
//!
//! Keyfiles (`nm-settings-keyfile(5)`) go in `/etc/NetworkManager/system-connections/` with
//! mode 0600, owner root: NetworkManager ignores them otherwise. netplan files
//! (`/etc/netplan/*.yaml`, netplan's v2 schema) are mode 0600 as `netplan` itself requires.

use crate::ops::{FileAttrs, FileOp, Part};
use crate::secrets::derive;

use super::yaml::quote as yaml_str;

/// IPv4 or IPv6 settings of one interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpConfig {
    /// Use DHCP (v4) / SLAAC+DHCPv6 (v6).
    pub dhcp: bool,
    /// Static addresses with prefix (`10.0.0.11/24`).
    pub addresses: Vec<String>,
    /// Default gateway.
    pub gateway: Option<String>,
}

/// One wired or wireless interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    /// Kernel name (`eth0`, `wlan0`).
    pub name: String,
    /// IPv4.
    pub ipv4: IpConfig,
    /// IPv6 (`dhcp` true means automatic).
    pub ipv6: Option<IpConfig>,
    /// DNS servers.
    pub dns: Vec<String>,
    /// DNS search domains.
    pub search: Vec<String>,
    /// Wi-Fi settings, for a wireless interface.
    pub wifi: Option<WifiNetwork>,
}

/// Wi-Fi network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WifiNetwork {
    /// SSID.
    pub ssid: String,
    /// The 64-hex-digit PSK (never the passphrase).
    pub psk: String,
    /// Two-letter regulatory domain.
    pub country: String,
    /// The network does not broadcast its SSID.
    pub hidden: bool,
}

fn nm_ip(s: &mut String, section: &str, ip: &IpConfig, dns: &[String], search: &[String]) {
    s.push_str(&format!("\n[{section}]\n"));
    if ip.addresses.is_empty() {
        s.push_str(if ip.dhcp {
            "method=auto\n"
        } else {
            "method=disabled\n"
        });
    } else {
        s.push_str("method=manual\n");
        for (i, a) in ip.addresses.iter().enumerate() {
            match (&ip.gateway, i) {
                (Some(gw), 0) => s.push_str(&format!("address1={a},{gw}\n")),
                _ => s.push_str(&format!("address{}={a}\n", i + 1)),
            }
        }
    }
    if !dns.is_empty() {
        s.push_str(&format!("dns={};\n", dns.join(";")));
    }
    if !search.is_empty() {
        s.push_str(&format!("dns-search={};\n", search.join(";")));
    }
}

/// `value` as a GLib key file value (what NetworkManager's keyfiles are): `\\`, line breaks
/// and tabs escaped, and a leading space as `\s`, so no value can end its line and start a
/// key or a `[section]` of its own. The recipe already refuses other control characters.
pub fn keyfile_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' ' if i == 0 => out.push_str("\\s"),
            c => out.push(c),
        }
    }
    out
}

/// The NetworkManager keyfile for `iface`.
pub fn nm_keyfile(iface: &Interface, uuid: &str) -> String {
    let kind = if iface.wifi.is_some() {
        "wifi"
    } else {
        "ethernet"
    };
    let mut s = format!(
        "# Written by piimage.\n[connection]\nid={name}\nuuid={uuid}\ntype={kind}\ninterface-name={name}\nautoconnect=true\n",
        name = iface.name
    );
    match &iface.wifi {
        Some(w) => {
            s.push_str(&format!(
                "\n[wifi]\nmode=infrastructure\nssid={}\n",
                keyfile_value(&w.ssid)
            ));
            if w.hidden {
                s.push_str("hidden=true\n");
            }
            s.push_str(&format!(
                "\n[wifi-security]\nkey-mgmt=wpa-psk\npsk={}\n",
                w.psk
            ));
        }
        None => s.push_str("\n[ethernet]\n"),
    }
    let (v4dns, v6dns): (Vec<String>, Vec<String>) =
        iface.dns.iter().cloned().partition(|d| !d.contains(':'));
    nm_ip(&mut s, "ipv4", &iface.ipv4, &v4dns, &iface.search);
    let v6 = iface.ipv6.clone().unwrap_or(IpConfig {
        dhcp: true,
        ..IpConfig::default()
    });
    nm_ip(&mut s, "ipv6", &v6, &v6dns, &[]);
    s.push_str("\n[proxy]\n");
    s
}

/// The netplan (v2) document for all interfaces.
pub fn netplan(ifaces: &[Interface]) -> String {
    let mut eth = String::new();
    let mut wifi = String::new();
    for i in ifaces {
        let out = if i.wifi.is_some() {
            &mut wifi
        } else {
            &mut eth
        };
        out.push_str(&format!("    {}:\n", i.name));
        out.push_str(&format!(
            "      dhcp4: {}\n",
            i.ipv4.dhcp && i.ipv4.addresses.is_empty()
        ));
        let v6 = i.ipv6.clone().unwrap_or_default();
        out.push_str(&format!(
            "      dhcp6: {}\n",
            v6.dhcp && v6.addresses.is_empty()
        ));
        let addrs: Vec<String> = i
            .ipv4
            .addresses
            .iter()
            .chain(v6.addresses.iter())
            .map(|a| yaml_str(a))
            .collect();
        if !addrs.is_empty() {
            out.push_str(&format!("      addresses: [{}]\n", addrs.join(", ")));
        }
        let gws: Vec<&String> = i.ipv4.gateway.iter().chain(v6.gateway.iter()).collect();
        if !gws.is_empty() {
            out.push_str("      routes:\n");
            for g in gws {
                out.push_str(&format!(
                    "        - to: default\n          via: {}\n",
                    yaml_str(g)
                ));
            }
        }
        if !i.dns.is_empty() || !i.search.is_empty() {
            out.push_str("      nameservers:\n");
            if !i.dns.is_empty() {
                let d: Vec<String> = i.dns.iter().map(|d| yaml_str(d)).collect();
                out.push_str(&format!("        addresses: [{}]\n", d.join(", ")));
            }
            if !i.search.is_empty() {
                let d: Vec<String> = i.search.iter().map(|d| yaml_str(d)).collect();
                out.push_str(&format!("        search: [{}]\n", d.join(", ")));
            }
        }
        if let Some(w) = &i.wifi {
            out.push_str(&format!(
                "      regulatory-domain: {}\n",
                yaml_str(&w.country)
            ));
            out.push_str("      access-points:\n");
            out.push_str(&format!("        {}:\n", yaml_str(&w.ssid)));
            out.push_str(&format!("          password: {}\n", yaml_str(&w.psk)));
            if w.hidden {
                out.push_str("          hidden: true\n");
            }
        } else {
            out.push_str("      optional: true\n");
        }
    }
    let mut s = String::from("# Written by piimage.\nnetwork:\n  version: 2\n");
    if !eth.is_empty() {
        s.push_str("  ethernets:\n");
        s.push_str(&eth);
    }
    if !wifi.is_empty() {
        s.push_str("  wifis:\n");
        s.push_str(&wifi);
    }
    s
}

/// Operations writing the network configuration in the form the image's stack reads.
pub fn network_ops(
    netplan_stack: bool,
    ifaces: &[Interface],
    seed: &[u8],
    node: &str,
) -> Vec<FileOp> {
    if netplan_stack {
        return vec![FileOp::Write {
            part: Part::Root,
            path: "/etc/netplan/90-piimage.yaml".to_owned(),
            data: netplan(ifaces).into_bytes(),
            owner: FileAttrs::root(0o600),
        }];
    }
    ifaces
        .iter()
        .map(|i| FileOp::Write {
            part: Part::Root,
            path: format!(
                "/etc/NetworkManager/system-connections/{}.nmconnection",
                i.name
            ),
            data: nm_keyfile(i, &derive::connection_uuid(seed, node, &i.name)).into_bytes(),
            owner: FileAttrs::root(0o600),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn static_eth() -> Interface {
        Interface {
            name: "eth0".into(),
            ipv4: IpConfig {
                dhcp: false,
                addresses: vec!["10.0.0.11/24".into()],
                gateway: Some("10.0.0.1".into()),
            },
            ipv6: None,
            dns: vec!["10.0.0.1".into(), "2606:4700:4700::1111".into()],
            search: vec!["lab".into()],
            wifi: None,
        }
    }

    #[test]
    fn keyfile_static() {
        let k = nm_keyfile(&static_eth(), "u");
        for want in [
            "type=ethernet\n",
            "interface-name=eth0\n",
            "[ipv4]\nmethod=manual\naddress1=10.0.0.11/24,10.0.0.1\ndns=10.0.0.1;\ndns-search=lab;\n",
            "[ipv6]\nmethod=auto\ndns=2606:4700:4700::1111;\n",
        ] {
            assert!(k.contains(want), "{want:?} not in\n{k}");
        }
    }

    #[test]
    fn keyfile_values_cannot_start_a_line() {
        assert_eq!(keyfile_value("lab net"), "lab net");
        assert_eq!(keyfile_value(" a\\b"), "\\sa\\\\b");
        assert_eq!(
            keyfile_value("a\n[connection]\nb\tc\r"),
            "a\\n[connection]\\nb\\tc\\r"
        );
        let mut w = static_eth();
        w.name = "wlan0".into();
        w.wifi = Some(WifiNetwork {
            ssid: "x\n[connection]\nid=evil".into(),
            psk: "ab".repeat(32),
            country: "GB".into(),
            hidden: false,
        });
        let k = nm_keyfile(&w, "u");
        assert_eq!(k.matches("[connection]\n").count(), 1, "{k}");
        assert!(k.contains("ssid=x\\n[connection]\\nid=evil\n"), "{k}");
    }

    #[test]
    fn netplan_static_and_wifi() {
        let mut w = static_eth();
        w.name = "wlan0".into();
        w.ipv4 = IpConfig {
            dhcp: true,
            ..IpConfig::default()
        };
        w.wifi = Some(WifiNetwork {
            ssid: "lab \"net\"".into(),
            psk: "ab".repeat(32),
            country: "GB".into(),
            hidden: true,
        });
        let n = netplan(&[static_eth(), w]);
        assert!(
            n.contains("  ethernets:\n    eth0:\n      dhcp4: false\n"),
            "{n}"
        );
        assert!(
            n.contains("      routes:\n        - to: default\n          via: \"10.0.0.1\"\n"),
            "{n}"
        );
        assert!(n.contains("        \"lab \\\"net\\\"\":\n"), "{n}");
        assert!(n.contains("      regulatory-domain: \"GB\"\n"), "{n}");
    }
}
