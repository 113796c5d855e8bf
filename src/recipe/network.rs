//! `network`: interfaces (DHCP or static, IPv4 and IPv6), Wi-Fi, forwarding.

use std::net::IpAddr;

use ipnet::IpNet;

use super::ctx::Ctx;
use super::located::{Located, Origin};
use super::net;
use super::raw::{RawInterface, RawNetwork, RawWifi};
use super::spec::{
    InterfaceSpec, Ipv4Spec, Ipv6Mode, Ipv6Spec, NetworkSpec, NodeAddress, SecretSource,
    WifiSecret, WifiSpec,
};
use super::syntax;

/// The interface that carries a node's static address unless `network.primary` says otherwise.
pub const DEFAULT_PRIMARY: &str = "eth0";

/// Resolves `network` for a node with `address` (a prefix makes it static on the primary
/// interface).
pub(crate) fn network(
    ctx: &mut Ctx,
    raw: Option<&Located<RawNetwork>>,
    address: Option<(NodeAddress, &Origin)>,
) -> NetworkSpec {
    let mut spec = NetworkSpec::default();
    let primary = match raw.and_then(|r| r.value.primary.as_ref()) {
        Some(p) => {
            ctx.check(&p.at, syntax::interface_name(&p.value));
            p.value.clone()
        }
        None => DEFAULT_PRIMARY.to_owned(),
    };
    let static_address = address.and_then(|(a, at)| {
        a.prefix
            .and_then(|p| IpNet::new(a.ip, p).ok())
            .map(|net| (net, at))
    });
    let mut names: Vec<(String, Option<&Located<RawInterface>>)> = raw
        .and_then(|r| r.value.interfaces.as_ref())
        .map(|m| m.value.iter().map(|(k, v)| (k.clone(), Some(v))).collect())
        .unwrap_or_default();
    if static_address.is_some() && !names.iter().any(|(n, _)| *n == primary) {
        names.push((primary.clone(), None));
        names.sort_by(|a, b| a.0.cmp(&b.0));
    }
    for (name, iface) in names {
        let node_static = if name == primary {
            static_address
        } else {
            None
        };
        if let Some(i) = interface(ctx, &name, iface, node_static) {
            spec.interfaces.push(i);
        }
    }
    if let Some(r) = raw {
        spec.route_via = r.value.route_via.as_ref().map(|v| v.value.clone());
        spec.ip_forward = r.value.ip_forward.as_ref().is_some_and(|v| v.value);
    }
    spec
}

fn interface(
    ctx: &mut Ctx,
    name: &str,
    raw: Option<&Located<RawInterface>>,
    node_static: Option<(IpNet, &Origin)>,
) -> Option<InterfaceSpec> {
    let default = RawInterface::default();
    let (r, at) = match raw {
        Some(l) => (&l.value, Some(&l.at)),
        None => (&default, None),
    };
    if let Some(at) = at {
        ctx.check(at, syntax::interface_name(name))?;
    }
    let mut v4: Vec<IpNet> = Vec::new();
    let mut v6: Vec<IpNet> = Vec::new();
    if let Some((net, _)) = node_static {
        match net {
            IpNet::V4(_) => v4.push(net),
            IpNet::V6(_) => v6.push(net),
        }
    }
    for a in r.addresses.iter().flat_map(|a| &a.value) {
        if let Some(net) = ctx.check(&a.at, net::cidr(&a.value)) {
            let list = if matches!(net, IpNet::V4(_)) {
                &mut v4
            } else {
                &mut v6
            };
            if list.iter().any(|n| n.addr() == net.addr()) {
                if node_static.is_none() {
                    ctx.problem(&a.at, format!("{} is listed twice", net.addr()));
                }
            } else {
                list.push(net);
            }
        }
    }
    let dhcp = match &r.dhcp {
        Some(d) => {
            if d.value
                && let Some((net, addr_at)) = node_static.filter(|(n, _)| matches!(n, IpNet::V4(_)))
            {
                ctx.problem(
                    &d.at,
                    format!(
                        "the node's address {net} (at {addr_at}) has a prefix, which makes it \
                             static on {name}; drop the prefix to keep DHCP (a DHCP reservation), \
                             or drop `dhcp: true`"
                    ),
                );
            }
            d.value
        }
        None => v4.is_empty(),
    };
    let gateway = r
        .gateway
        .as_ref()
        .and_then(|g| match ctx.check(&g.at, net::ip(&g.value))? {
            IpAddr::V4(ip) => {
                if !v4.is_empty() && !v4.iter().any(|n| n.contains(&IpAddr::V4(ip))) {
                    let nets: Vec<String> = v4.iter().map(|n| n.trunc().to_string()).collect();
                    ctx.problem(
                        &g.at,
                        format!(
                            "gateway {ip} is not in the interface's subnet ({}); a gateway must be \
                             directly reachable",
                            nets.join(", ")
                        ),
                    );
                }
                Some(ip)
            }
            IpAddr::V6(_) => {
                ctx.problem(&g.at, "an IPv6 gateway goes in `gateway6`");
                None
            }
        });
    let mode = r.ipv6.as_ref().map_or(Ipv6Mode::Auto, |m| m.value);
    if mode == Ipv6Mode::Off
        && !v6.is_empty()
        && let Some(m) = &r.ipv6
    {
        ctx.problem(
            &m.at,
            "`ipv6: off` with IPv6 addresses; remove one or the other",
        );
    }
    let gateway6 = r
        .gateway6
        .as_ref()
        .and_then(|g| match ctx.check(&g.at, net::ip(&g.value))? {
            IpAddr::V6(ip) => Some(ip),
            IpAddr::V4(_) => {
                ctx.problem(&g.at, "an IPv4 gateway goes in `gateway`");
                None
            }
        });
    let mut dns = Vec::new();
    for d in r.dns.iter().flat_map(|d| &d.value) {
        if let Some(ip) = ctx.check(&d.at, net::ip(&d.value)) {
            dns.push(ip);
        }
    }
    let mut search = Vec::new();
    for s in r.search.iter().flat_map(|s| &s.value) {
        if ctx.check(&s.at, syntax::domain(&s.value)).is_some() {
            search.push(s.value.clone());
        }
    }
    let wifi = r.wifi.as_ref().and_then(|w| wifi(ctx, w));
    Some(InterfaceSpec {
        name: name.to_owned(),
        ipv4: Ipv4Spec {
            dhcp,
            addresses: v4,
            gateway,
        },
        ipv6: Ipv6Spec {
            mode,
            addresses: v6,
            gateway: gateway6,
        },
        dns,
        search,
        wifi,
    })
}

fn wifi(ctx: &mut Ctx, w: &Located<RawWifi>) -> Option<WifiSpec> {
    let r = &w.value;
    let mut ok = true;
    if r.ssid.value.is_empty() || r.ssid.value.len() > 32 {
        ctx.problem(&r.ssid.at, "an SSID is 1 to 32 bytes long");
        ok = false;
    } else if let Some(c) = r.ssid.value.chars().find(|c| c.is_control()) {
        ctx.problem(
            &r.ssid.at,
            format!(
                "the SSID holds the control character {c:?}; NetworkManager, netplan and \
                 wpa_supplicant configurations cannot carry it safely"
            ),
        );
        ok = false;
    }
    let country = match &r.country {
        Some(c) => {
            let valid = c.value.len() == 2 && c.value.chars().all(|ch| ch.is_ascii_uppercase());
            if !valid {
                ctx.problem(
                    &c.at,
                    format!(
                        "{:?} is not a country code: write two uppercase letters (ISO 3166), e.g. GB, US, DE",
                        c.value
                    ),
                );
                ok = false;
            }
            c.value.clone()
        }
        None => {
            ctx.problem(
                &w.at,
                "Wi-Fi needs `country` (two letters, e.g. GB): Raspberry Pi OS keeps the radio \
                 off until the regulatory domain is set",
            );
            ok = false;
            String::new()
        }
    };
    let secret = match (&r.passphrase, &r.psk) {
        (Some(p), None) => {
            let source = ctx.secret(p, true, "")?;
            check_passphrase(ctx, &p.at, &source).then_some(WifiSecret::Passphrase(source))
        }
        (None, Some(k)) => {
            let valid = k.value.len() == 64 && k.value.chars().all(|c| c.is_ascii_hexdigit());
            if !valid {
                ctx.problem(&k.at, "a PSK is 64 hex digits (`wpa_passphrase` prints it); for a passphrase use `passphrase`");
            }
            valid.then(|| WifiSecret::Psk(k.value.to_ascii_lowercase()))
        }
        (Some(_), Some(_)) => {
            ctx.problem(&w.at, "give `passphrase` or `psk`, not both");
            None
        }
        (None, None) => {
            ctx.problem(
                &w.at,
                "Wi-Fi needs `passphrase` (or `psk`); open networks are not supported",
            );
            None
        }
    };
    let secret = secret?;
    ok.then(|| WifiSpec {
        ssid: r.ssid.value.clone(),
        secret,
        country,
        hidden: r.hidden.as_ref().is_some_and(|h| h.value),
    })
}

/// WPA2 passphrases are 8 to 63 printable ASCII characters.
fn check_passphrase(ctx: &mut Ctx, at: &Origin, source: &SecretSource) -> bool {
    let text = match source {
        SecretSource::Inline(s) => s.clone(),
        _ if ctx.options.skip_secrets => return true,
        other => match other.read() {
            Ok(s) => s,
            Err(_) => return false, // already reported by the secret check
        },
    };
    let n = text.chars().count();
    let printable = text.chars().all(|c| (' '..='~').contains(&c));
    if !(8..=63).contains(&n) || !printable {
        let shown = match source {
            SecretSource::Inline(_) => "the passphrase".to_owned(),
            other => format!("the passphrase from {other}"),
        };
        ctx.problem(
            at,
            format!("{shown} has {n} characters; WPA2 passphrases are 8 to 63 printable ASCII characters"),
        );
        return false;
    }
    true
}
