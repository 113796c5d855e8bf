//! `nodes:`: single nodes and ranges (`worker-{01..08}`) expanded into a flat list, with
//! addresses from the entries or from pools.

use std::collections::HashSet;
use std::net::IpAddr;

use super::error::Problems;
use super::located::{Located, Origin, StrOr};
use super::net::{self, Pool};
use super::raw::{RawNode, RawSettings};
use super::spec::NodeAddress;
use super::syntax;

/// Most nodes one range may expand to.
pub const MAX_RANGE: u64 = 4096;

/// The role of a node that sets none.
pub const DEFAULT_ROLE: &str = "node";

/// One node after range expansion, settings still raw.
#[derive(Debug, Clone)]
pub(crate) struct ExpandedNode {
    /// Name.
    pub name: String,
    /// Where the name (or its range) was written.
    pub at: Origin,
    /// `hostname`, if the entry sets one.
    pub hostname: Option<Located<String>>,
    /// Address, if known.
    pub address: Option<NodeAddress>,
    /// Where the address was written (or allocated from).
    pub address_at: Option<Origin>,
    /// `access_address`: how the machine that connects reaches the node, when not `address`.
    pub access_address: Option<IpAddr>,
    /// Role.
    pub role: String,
    /// Number in a range name.
    pub index: Option<u64>,
    /// The board's serial or MAC, for network boot.
    pub boot_id: Option<super::spec::BootId>,
    /// The entry's own settings.
    pub settings: RawSettings,
}

/// A parsed `prefix{A..B}suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Range {
    prefix: String,
    suffix: String,
    first: u64,
    last: u64,
    width: usize,
}

impl Range {
    /// Parses `worker-{01..08}`: one `{A..B}` with `A <= B`; a leading zero in `A` pads every
    /// number to `A`'s width.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad =
            |why: &str| format!("{s:?} is not a range: {why}; write it like worker-{{01..08}}");
        let open = s.find('{').ok_or_else(|| bad("no {A..B}"))?;
        let close = s[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or_else(|| bad("no closing }"))?;
        let (prefix, rest) = (&s[..open], &s[open + 1..close]);
        let suffix = &s[close + 1..];
        if prefix.contains(['{', '}']) || suffix.contains(['{', '}']) {
            return Err(bad("only one {A..B} is allowed"));
        }
        let (a, b) = rest
            .split_once("..")
            .ok_or_else(|| bad("write the bounds as A..B"))?;
        let digits = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit());
        if !digits(a) || !digits(b) {
            return Err(bad("the bounds must be decimal numbers"));
        }
        let first: u64 = a.parse().map_err(|_| bad("bound too large"))?;
        let last: u64 = b.parse().map_err(|_| bad("bound too large"))?;
        if first > last {
            return Err(bad("the first bound is larger than the last"));
        }
        if last - first >= MAX_RANGE {
            return Err(bad(&format!("more than {MAX_RANGE} nodes")));
        }
        let width = if a.len() > 1 && a.starts_with('0') {
            a.len()
        } else {
            0
        };
        Ok(Self {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            first,
            last,
            width,
        })
    }

    /// `(number, name)` for every member, in order.
    pub fn names(&self) -> Vec<(u64, String)> {
        (self.first..=self.last)
            .map(|n| {
                (
                    n,
                    format!("{}{:0w$}{}", self.prefix, n, self.suffix, w = self.width),
                )
            })
            .collect()
    }
}

/// Addresses explicitly written on single nodes, and gateways from every network block: a
/// subnet pool skips them.
pub(crate) fn taken_addresses(
    entries: &[Located<RawNode>],
    blocks: &[&RawSettings],
) -> HashSet<IpAddr> {
    let mut taken = HashSet::new();
    for e in entries {
        if let Some(a) = &e.value.address
            && let Ok(a) = net::node_address(&a.value)
        {
            taken.insert(a.ip);
        }
        if let Some(StrOr::Full(list)) = e.value.addresses.as_ref().map(|a| &a.value) {
            taken.extend(
                list.iter()
                    .filter_map(|a| net::node_address(&a.value).ok())
                    .map(|a| a.ip),
            );
        }
    }
    for block in blocks {
        let Some(network) = &block.network else {
            continue;
        };
        let Some(ifaces) = &network.value.interfaces else {
            continue;
        };
        for iface in ifaces.value.values() {
            for gw in [&iface.value.gateway, &iface.value.gateway6]
                .into_iter()
                .flatten()
            {
                if let Ok(ip) = net::ip(&gw.value) {
                    taken.insert(ip);
                }
            }
        }
    }
    taken
}

/// Expands `entries` (ranges into their members), reporting entry problems.
pub(crate) fn expand(
    entries: &[Located<RawNode>],
    mut taken: HashSet<IpAddr>,
    problems: &mut Problems,
) -> Vec<ExpandedNode> {
    let mut out = Vec::new();
    for entry in entries {
        let mut raw = entry.value.clone();
        let settings = raw.take_settings();
        let role = match &raw.role {
            Some(r) => {
                if let Err(e) = syntax::role(&r.value) {
                    problems.add(&r.at, e);
                }
                r.value.clone()
            }
            None => DEFAULT_ROLE.to_owned(),
        };
        match (&raw.name, &raw.range) {
            (Some(name), None) => {
                if let Some(a) = &raw.addresses {
                    problems.add(
                        &a.at,
                        "`addresses` is for ranges; a single node has `address`",
                    );
                }
                let address =
                    raw.address
                        .as_ref()
                        .and_then(|a| match net::node_address(&a.value) {
                            Ok(addr) => Some((addr, a.at.clone())),
                            Err(e) => {
                                problems.add(&a.at, e);
                                None
                            }
                        });
                if let Err(e) = syntax::hostname_label(&name.value) {
                    problems.add(&name.at, e);
                }
                let access_address = raw.access_address.as_ref().and_then(|a| {
                    match a.value.parse::<IpAddr>() {
                        Ok(ip) => Some(ip),
                        Err(_) => {
                            problems.add(
                                &a.at,
                                format!(
                                    "{:?} is not an IP address (no /prefix: it is only used to connect)",
                                    a.value
                                ),
                            );
                            None
                        }
                    }
                });
                let boot_id = super::netboot::single(&raw, problems);
                out.push(ExpandedNode {
                    name: name.value.clone(),
                    at: name.at.clone(),
                    hostname: raw.hostname.clone(),
                    address: address.as_ref().map(|a| a.0),
                    address_at: address.map(|a| a.1),
                    access_address,
                    role,
                    index: None,
                    boot_id,
                    settings,
                });
            }
            (None, Some(range)) => {
                if let Some(a) = &raw.address {
                    problems.add(
                        &a.at,
                        "a range takes `addresses` (a pool or a list), not `address`",
                    );
                }
                if let Some(h) = &raw.hostname {
                    problems.add(
                        &h.at,
                        "a range cannot set `hostname`: each node's hostname is its name",
                    );
                }
                if let Some(a) = &raw.access_address {
                    problems.add(
                        &a.at,
                        "a range cannot set `access_address` (single nodes only, e.g. a gateway)",
                    );
                }
                let members = match Range::parse(&range.value) {
                    Ok(r) => r.names(),
                    Err(e) => {
                        problems.add(&range.at, e);
                        continue;
                    }
                };
                for (_, name) in &members {
                    if let Err(e) = syntax::hostname_label(name) {
                        problems.add(&range.at, e);
                        break;
                    }
                }
                let addresses =
                    range_addresses(raw.addresses.as_ref(), members.len(), &mut taken, problems);
                let boot_ids = super::netboot::range(&raw, members.len(), problems);
                for (i, ((n, name), boot_id)) in members.into_iter().zip(boot_ids).enumerate() {
                    let address = addresses
                        .as_ref()
                        .and_then(|(list, _)| list.get(i).copied());
                    out.push(ExpandedNode {
                        name,
                        at: range.at.clone(),
                        hostname: None,
                        address,
                        address_at: addresses.as_ref().map(|(_, at)| at.clone()),
                        access_address: None,
                        role: role.clone(),
                        index: Some(n),
                        boot_id,
                        settings: settings.clone(),
                    });
                }
            }
            (Some(name), Some(_)) => {
                problems.add(&entry.at, format!(
                    "a nodes entry has either `name` (one node) or `range` (several), not both (name {:?})",
                    name.value
                ));
            }
            (None, None) => {
                problems.add(
                    &entry.at,
                    "a nodes entry needs `name` (one node) or `range` (e.g. worker-{01..08})",
                );
            }
        }
    }
    out
}

fn range_addresses(
    addresses: Option<&Located<StrOr<Vec<Located<String>>>>>,
    count: usize,
    taken: &mut HashSet<IpAddr>,
    problems: &mut Problems,
) -> Option<(Vec<NodeAddress>, Origin)> {
    let a = addresses?;
    let list = match &a.value {
        StrOr::Str(s) => match Pool::parse(s).and_then(|p| p.allocate(count, taken)) {
            Ok(list) => list,
            Err(e) => {
                problems.add(&a.at, e);
                return None;
            }
        },
        StrOr::Full(items) => {
            if items.len() != count {
                problems.add(&a.at, format!(
                    "{} addresses for a range of {count} nodes; give one per node or a pool (10.0.0.11/24+)",
                    items.len()
                ));
                return None;
            }
            let mut list = Vec::new();
            for item in items {
                match net::node_address(&item.value) {
                    Ok(addr) => list.push(addr),
                    Err(e) => problems.add(&item.at, e),
                }
            }
            if list.len() != count {
                return None;
            }
            list
        }
    };
    taken.extend(list.iter().map(|a| a.ip));
    Some((list, a.at.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = Range::parse("worker-{01..03}").unwrap();
        assert_eq!(
            r.names(),
            [
                (1, "worker-01".into()),
                (2, "worker-02".into()),
                (3, "worker-03".into())
            ]
        );
        let r = Range::parse("n{8..10}x").unwrap();
        assert_eq!(
            r.names().into_iter().map(|(_, n)| n).collect::<Vec<_>>(),
            ["n8x", "n9x", "n10x"]
        );
        assert_eq!(Range::parse("a{007..008}").unwrap().names()[0].1, "a007");
        for bad in [
            "worker",
            "w{1..}",
            "w{a..b}",
            "w{3..1}",
            "w{1..2}{3..4}",
            "w{1-3}",
            "w{1..99999}",
        ] {
            assert!(Range::parse(bad).is_err(), "{bad}");
        }
    }
}
