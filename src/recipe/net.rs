//! Addresses: a node's `address`, interface CIDRs, and the address pools of node ranges.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::spec::NodeAddress;

/// An IP address, v4 or v6.
pub fn ip(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address"))
}

/// An address with its prefix length (`10.0.0.11/24`), as an interface holds it.
pub fn cidr(s: &str) -> Result<IpNet, String> {
    if !s.contains('/') {
        return Err(format!(
            "{s:?} has no prefix length: write it as ADDRESS/PREFIX, e.g. 10.0.0.11/24"
        ));
    }
    let net: IpNet = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an address with prefix (CIDR), e.g. 10.0.0.11/24"))?;
    check_host(&net)?;
    Ok(net)
}

/// Refuses an interface address that is the network (or IPv4 broadcast) address of its
/// subnet.
fn check_host(net: &IpNet) -> Result<(), String> {
    let small = match net {
        IpNet::V4(n) => n.prefix_len() >= 31,
        IpNet::V6(n) => n.prefix_len() >= 127,
    };
    if small {
        return Ok(());
    }
    if net.addr() == net.network() {
        return Err(format!(
            "{net} is the network address of {}; use a host address such as {}",
            net.trunc(),
            nth(net.network(), 1).map_or_else(String::new, |a| a.to_string())
        ));
    }
    if matches!(net, IpNet::V4(_)) && net.addr() == net.broadcast() {
        return Err(format!("{net} is the broadcast address of {}", net.trunc()));
    }
    Ok(())
}

/// A node's `address`: `10.0.0.11` (known only) or `10.0.0.11/24` (static).
pub fn node_address(s: &str) -> Result<NodeAddress, String> {
    if s.contains('/') {
        let net = cidr(s)?;
        Ok(NodeAddress {
            ip: net.addr(),
            prefix: Some(net.prefix_len()),
        })
    } else {
        Ok(NodeAddress {
            ip: ip(s)?,
            prefix: None,
        })
    }
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(like: IpAddr, n: u128) -> Option<IpAddr> {
    match like {
        IpAddr::V4(_) => u32::try_from(n).ok().map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        IpAddr::V6(_) => Some(IpAddr::V6(Ipv6Addr::from(n))),
    }
}

/// `base + n`, if it stays in the address family.
fn nth(base: IpAddr, n: u128) -> Option<IpAddr> {
    to_u128(base)
        .checked_add(n)
        .and_then(|v| from_u128(base, v))
}

/// Where the addresses of a node range come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pool {
    /// `10.0.0.11+` or `10.0.0.11/24+`: consecutive addresses from the first (with the
    /// prefix, if given: they must stay in that subnet).
    Sequential {
        /// First address.
        start: IpAddr,
        /// Prefix length given to every address.
        prefix: Option<u8>,
    },
    /// `10.0.0.0/24`: free host addresses of the subnet, in order (the network and broadcast
    /// addresses, and addresses other nodes or gateways use, are skipped).
    Subnet(IpNet),
}

impl Pool {
    /// Parses `10.0.0.11+`, `10.0.0.11/24+` or `10.0.0.0/24`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(start) = s.strip_suffix('+') {
            let a = node_address(start)?;
            return Ok(Self::Sequential {
                start: a.ip,
                prefix: a.prefix,
            });
        }
        if s.contains('/') {
            let net: IpNet = s.parse().map_err(|_| {
                format!("{s:?} is not an address pool: write START+ (10.0.0.11+) or a subnet (10.0.0.0/24)")
            })?;
            if net.addr() != net.network() {
                return Err(format!(
                    "{s:?} is not a subnet (its host bits are set): write {}+ to count up from \
                     {}, or {} to use the whole subnet",
                    net,
                    net.addr(),
                    net.trunc()
                ));
            }
            return Ok(Self::Subnet(net));
        }
        Err(format!(
            "{s:?} is not an address pool: write START+ (10.0.0.11+, 10.0.0.11/24+) or a \
             subnet (10.0.0.0/24), or list one address per node"
        ))
    }

    /// `count` addresses; `taken` holds addresses a subnet pool must skip.
    pub fn allocate(
        &self,
        count: usize,
        taken: &HashSet<IpAddr>,
    ) -> Result<Vec<NodeAddress>, String> {
        let count_u = u128::try_from(count).unwrap_or(u128::MAX);
        match *self {
            Self::Sequential { start, prefix } => {
                let last = count_u.checked_sub(1).and_then(|n| nth(start, n));
                let fits = match (last, prefix) {
                    (None, _) => count == 0,
                    (Some(last), Some(p)) => {
                        let net = IpNet::new(start, p).map_err(|e| e.to_string())?;
                        let v4_broadcast =
                            matches!(net, IpNet::V4(_)) && p < 31 && last == net.broadcast();
                        net.contains(&last) && !v4_broadcast
                    }
                    (Some(_), None) => true,
                };
                if !fits {
                    return Err(format!(
                        "address pool exhausted: {} counting up from {start} leaves its \
                         subnet before {count} addresses",
                        self.describe()
                    ));
                }
                Ok((0..count_u)
                    .filter_map(|i| nth(start, i))
                    .map(|ip| NodeAddress { ip, prefix })
                    .collect())
            }
            Self::Subnet(net) => {
                let mut out = Vec::with_capacity(count);
                for host in net.hosts() {
                    if out.len() == count {
                        break;
                    }
                    if !taken.contains(&host) {
                        out.push(NodeAddress {
                            ip: host,
                            prefix: Some(net.prefix_len()),
                        });
                    }
                }
                if out.len() < count {
                    let free = match out.len() {
                        0 => "no free host address".to_owned(),
                        1 => "only 1 free host address".to_owned(),
                        n => format!("only {n} free host addresses"),
                    };
                    return Err(format!(
                        "address pool exhausted: {net} has {free}, the range needs {count}"
                    ));
                }
                Ok(out)
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Sequential {
                start,
                prefix: Some(p),
            } => format!("{start}/{p}+"),
            Self::Sequential {
                start,
                prefix: None,
            } => format!("{start}+"),
            Self::Subnet(n) => n.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(v: &[NodeAddress]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn node_addresses() {
        assert_eq!(node_address("10.0.0.11").unwrap().to_string(), "10.0.0.11");
        assert_eq!(node_address("10.0.0.11/24").unwrap().prefix, Some(24));
        assert_eq!(
            node_address("fd00::11/64").unwrap().to_string(),
            "fd00::11/64"
        );
        for bad in [
            "10.0.0.256",
            "10.0.0.11/33",
            "10.0.0.0/24",
            "10.0.0.255/24",
            "x",
            "",
        ] {
            assert!(node_address(bad).is_err(), "{bad}");
        }
        assert!(cidr("10.0.0.1").unwrap_err().contains("no prefix"));
    }

    #[test]
    fn pools() {
        let none = HashSet::new();
        let p = Pool::parse("10.0.0.11/24+").unwrap();
        assert_eq!(
            ips(&p.allocate(3, &none).unwrap()),
            ["10.0.0.11/24", "10.0.0.12/24", "10.0.0.13/24"]
        );
        let p = Pool::parse("10.0.0.253/24+").unwrap();
        assert!(p.allocate(2, &none).is_ok());
        assert!(p.allocate(3, &none).unwrap_err().contains("exhausted"));
        let p = Pool::parse("10.0.0.0/29").unwrap();
        let taken: HashSet<IpAddr> = ["10.0.0.1".parse().unwrap()].into();
        assert_eq!(
            ips(&p.allocate(3, &taken).unwrap()),
            ["10.0.0.2/29", "10.0.0.3/29", "10.0.0.4/29"]
        );
        assert!(p.allocate(6, &taken).unwrap_err().contains("exhausted"));
        assert!(
            Pool::parse("10.0.0.5/24")
                .unwrap_err()
                .contains("10.0.0.5/24+")
        );
        assert!(Pool::parse("10.0.0.5").is_err());
        let p = Pool::parse("fd00::10+").unwrap();
        assert_eq!(
            ips(&p.allocate(2, &none).unwrap()),
            ["fd00::10", "fd00::11"]
        );
    }
}
