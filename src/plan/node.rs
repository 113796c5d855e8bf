//! One node's plan: every file operation its image needs, from the resolved recipe and the
//! base image's [`Profile`].
//!
//! Order matters and is fixed: the default user's removal, users, SSH, hostname and hosts,
//! network, boot settings, mounts, system settings, services, overlays (which may override
//! anything before them), cloud-init, and last the disk identity.

use crate::image::os::OsFamily;
use crate::ops::{FileAttrs, FileOp, Part};
use crate::recipe as rs;
use crate::recipe::{NodeSpec, ResolvedRecipe};
use crate::secrets::derive;
use crate::secrets::hostkey::HostKey;
use crate::secrets::password::{self, Scheme};
use crate::secrets::wifi::psk;

use super::boot::{boot_ops, mount_ops};
use super::cloud_init::{SeedSpec, guard_op, meta_data, seed_ops, user_data};
use super::hosts::{HostsLine, hosts_file, hosts_ops};
use super::network::{Interface, IpConfig, WifiNetwork, netplan, network_ops};
use super::profile::Profile;
use super::ssh::{SshdConfig, ssh_ops};
use super::system::{keyboard_ops, locale_ops, timezone_ops};
use super::template_secrets::TemplateSecrets;
use super::units::enable_links;
use super::users::{Account, SudoRule, disarm_user_wizard, remove_user_ops, user_ops};
use super::{NodeConflict, PlanError};

/// Everything the build needs to make one node's image.
#[derive(Debug, Clone)]
pub struct NodePlan {
    /// Node name.
    pub name: String,
    /// The operations, in order.
    pub ops: Vec<FileOp>,
    /// New MBR disk id, when the image names partitions by PARTUUID.
    pub disk_id: Option<u32>,
    /// Baked SSH host key.
    pub host_key: Option<HostKey>,
    /// The first user with SSH keys (for ssh_config and the inventory).
    pub login_user: Option<String>,
    /// `(name, text)` of the recipe's `secrets:` values, which `plan` shows as markers.
    pub secret_values: Vec<(String, String)>,
}

fn err(node: &NodeSpec, conflict: NodeConflict) -> PlanError {
    PlanError::node(&node.name, conflict)
}

/// A conflict about one of the node's users, placed where the recipe wrote that user (or the
/// group at fault).
fn user_err(node: &NodeSpec, conflict: NodeConflict) -> PlanError {
    let at = conflict
        .user()
        .and_then(|name| node.users.iter().find(|u| u.name == name))
        .map(|u| match &conflict {
            NodeConflict::UnknownGroup { group, .. } => u
                .groups
                .iter()
                .zip(&u.at.groups)
                .find(|(g, _)| *g == group)
                .map_or(&u.at.name, |(_, at)| at),
            NodeConflict::NoFreeUid { .. } => u.at.uid.as_ref().unwrap_or(&u.at.name),
            _ => &u.at.name,
        })
        .map(|at| Box::new(at.clone()));
    PlanError::Node {
        node: node.name.clone(),
        at,
        conflict,
    }
}

fn resolve_password(
    node: &NodeSpec,
    seed: &[u8],
    u: &rs::UserSpec,
) -> Result<Option<String>, PlanError> {
    match &u.password {
        None => Ok(None),
        Some(rs::PasswordSpec::Hash(h)) => Ok(Some(h.clone())),
        Some(rs::PasswordSpec::Plain { source, scheme }) => {
            let plain = source.read().map_err(|reason| {
                user_err(
                    node,
                    NodeConflict::PasswordSource {
                        user: u.name.clone(),
                        reason,
                    },
                )
            })?;
            let scheme = match scheme {
                rs::PasswordScheme::Yescrypt => Scheme::Yescrypt,
                _ => Scheme::Sha512,
            };
            let mut rng = derive::password_rng(seed, &node.name, &u.name);
            password::hash(&plain, scheme, &mut rng)
                .map(Some)
                .map_err(|source| {
                    user_err(
                        node,
                        NodeConflict::PasswordHash {
                            user: u.name.clone(),
                            source,
                        },
                    )
                })
        }
    }
}

fn sudo(s: rs::Sudo) -> SudoRule {
    match s {
        rs::Sudo::None => SudoRule::None,
        rs::Sudo::Password => SudoRule::Password,
        rs::Sudo::Nopassword => SudoRule::NoPassword,
    }
}

fn users(
    node: &NodeSpec,
    profile: &Profile,
    seed: &[u8],
) -> Result<(Vec<Account>, Vec<String>), PlanError> {
    let mut out = Vec::new();
    for u in &node.users {
        out.push(Account {
            name: u.name.clone(),
            uid: u.uid,
            gecos: u.gecos.clone(),
            shell: u.shell.clone(),
            groups: u.groups.clone(),
            sudo: sudo(u.sudo),
            password_hash: resolve_password(node, seed, u)?,
            locked: u.locked,
            authorized_keys: u.authorized_keys.clone(),
        });
    }
    let default = profile.users.first();
    let removed = match (&node.default_user, default) {
        (rs::DefaultUser::Keep, _) | (_, None) => Vec::new(),
        (rs::DefaultUser::Remove, Some(d)) => vec![d.name.clone()],
        (rs::DefaultUser::Rename(new), Some(d)) => {
            // The renamed account keeps its uid and groups; a recipe user of the new name
            // supplies the rest.
            match out.iter_mut().find(|u| &u.name == new) {
                Some(u) => {
                    u.uid = u.uid.or(Some(d.uid));
                    for g in &d.groups {
                        if !u.groups.contains(g) {
                            u.groups.push(g.clone());
                        }
                    }
                }
                None => out.insert(
                    0,
                    Account {
                        name: new.clone(),
                        uid: Some(d.uid),
                        shell: d.shell.clone(),
                        groups: d.groups.clone(),
                        ..Account::default()
                    },
                ),
            }
            vec![d.name.clone()]
        }
    };
    Ok((out, removed))
}

fn interfaces(node: &NodeSpec) -> Result<Vec<Interface>, PlanError> {
    node.network
        .interfaces
        .iter()
        .map(|i| {
            let wifi = match &i.wifi {
                None => None,
                Some(w) => {
                    let key = match &w.secret {
                        rs::WifiSecret::Psk(p) => p.clone(),
                        rs::WifiSecret::Passphrase(src) => {
                            let pass = src.read().map_err(|reason| {
                                err(node, NodeConflict::WifiPassphraseSource { reason })
                            })?;
                            psk(&w.ssid, &pass).map_err(|source| {
                                err(
                                    node,
                                    NodeConflict::WifiKey {
                                        ssid: w.ssid.clone(),
                                        source,
                                    },
                                )
                            })?
                        }
                    };
                    Some(WifiNetwork {
                        ssid: w.ssid.clone(),
                        psk: key,
                        country: w.country.clone(),
                        hidden: w.hidden,
                    })
                }
            };
            let v6 = match i.ipv6.mode {
                rs::Ipv6Mode::Off if i.ipv6.addresses.is_empty() => IpConfig::default(),
                mode => IpConfig {
                    dhcp: mode != rs::Ipv6Mode::Off,
                    addresses: i.ipv6.addresses.iter().map(ToString::to_string).collect(),
                    gateway: i.ipv6.gateway.map(|g| g.to_string()),
                },
            };
            Ok(Interface {
                name: i.name.clone(),
                ipv4: IpConfig {
                    dhcp: i.ipv4.dhcp,
                    addresses: i.ipv4.addresses.iter().map(ToString::to_string).collect(),
                    gateway: i.ipv4.gateway.map(|g| g.to_string()),
                },
                ipv6: Some(v6),
                dns: i.dns.iter().map(ToString::to_string).collect(),
                search: i.search.clone(),
                wifi,
            })
        })
        .collect()
}

fn owner_id(profile: &Profile, users: &[Account], r: &rs::OwnerRef, group: bool) -> Option<u32> {
    match r {
        rs::OwnerRef::Id(id) => Some(*id),
        rs::OwnerRef::Name(n) => users
            .iter()
            .find(|u| &u.name == n)
            .and_then(|u| u.uid)
            .or_else(|| {
                let table = if group { &profile.gids } else { &profile.uids };
                table.iter().find(|(name, _)| name == n).map(|(_, id)| *id)
            }),
    }
}

fn overlay_ops(
    node: &NodeSpec,
    profile: &Profile,
    users: &[Account],
    extras: &TemplateSecrets,
) -> Result<Vec<FileOp>, PlanError> {
    let ctx = extras.shared.context(node);
    let mut ops = Vec::new();
    for ov in &node.overlays {
        let part = match ov.target {
            rs::OverlayTarget::Root => Part::Root,
            rs::OverlayTarget::Boot => Part::Boot,
        };
        for e in &ov.entries {
            let uid = owner_id(profile, users, &e.owner.user, false).ok_or_else(|| {
                err(
                    node,
                    NodeConflict::OverlayOwner {
                        dest: e.dest.clone(),
                        user: e.owner.user.to_string(),
                    },
                )
            })?;
            let gid = owner_id(profile, users, &e.owner.group, true).ok_or_else(|| {
                err(
                    node,
                    NodeConflict::OverlayGroup {
                        dest: e.dest.clone(),
                        group: e.owner.group.to_string(),
                    },
                )
            })?;
            let owner = FileAttrs {
                mode: e.mode,
                uid,
                gid,
            };
            let read = || {
                std::fs::read(&e.source).map_err(|source| {
                    err(
                        node,
                        NodeConflict::OverlayRead {
                            path: e.source.clone(),
                            source,
                        },
                    )
                })
            };
            ops.push(match &e.kind {
                rs::EntryKind::Dir => FileOp::Mkdir {
                    part,
                    path: e.dest.clone(),
                    owner,
                },
                rs::EntryKind::File => FileOp::Write {
                    part,
                    path: e.dest.clone(),
                    data: read()?,
                    owner,
                },
                rs::EntryKind::Template => {
                    let src = String::from_utf8(read()?).map_err(|_| {
                        err(
                            node,
                            NodeConflict::TemplateNotUtf8 {
                                path: e.source.clone(),
                            },
                        )
                    })?;
                    let text = crate::recipe::template::render(
                        &e.source.display().to_string(),
                        &src,
                        &ctx,
                    )
                    .map_err(|x| err(node, NodeConflict::Template(x)))?;
                    FileOp::Write {
                        part,
                        path: e.dest.clone(),
                        data: text.into_bytes(),
                        owner,
                    }
                }
                rs::EntryKind::Symlink { target } => FileOp::Symlink {
                    path: e.dest.clone(),
                    target: target.clone(),
                    uid,
                    gid,
                },
            });
        }
    }
    Ok(ops)
}

fn json_to_yaml_lines(map: &serde_json::Map<String, serde_json::Value>) -> String {
    // JSON is valid YAML 1.2 flow style: each extra key as `key: <json>`.
    let mut s = String::new();
    for (k, v) in map {
        s.push_str(&format!(
            "{}: {}\n",
            serde_json::Value::String(k.clone()),
            v
        ));
    }
    s
}

/// Plans node `node` of `recipe` on a base described by `profile`. `base_disk_id` is the MBR
/// disk id of the base (when it has one); `seed` makes every generated value reproducible;
/// `extras` are the templates' `secrets` and `host_keys` ([`TemplateSecrets::new`], once per
/// build).
pub fn plan_node(
    recipe: &ResolvedRecipe,
    node: &NodeSpec,
    profile: &Profile,
    base_disk_id: Option<u32>,
    cmdline_uses_partuuid: bool,
    seed: &[u8],
    extras: &TemplateSecrets,
) -> Result<NodePlan, PlanError> {
    let mode = node.cloud_init.mode;
    let bake = mode != rs::CloudInitMode::Seed;
    let seeds = mode != rs::CloudInitMode::Bake || profile.has_cloud_init();
    if mode != rs::CloudInitMode::Bake && !profile.has_cloud_init() {
        return Err(err(node, NodeConflict::NoCloudInit));
    }
    let mut ops = Vec::new();
    let (users, removed) = users(node, profile, seed)?;
    let login_user = users
        .iter()
        .find(|u| !u.authorized_keys.is_empty())
        .map(|u| u.name.clone());
    let mut host_key = None;

    if bake {
        for r in &removed {
            ops.extend(remove_user_ops(profile, r));
        }
        ops.extend(
            user_ops(profile, &users, &removed, recipe.epoch).map_err(|c| user_err(node, c))?,
        );
        if profile.is_raspios() && (!users.is_empty() || !removed.is_empty()) {
            ops.extend(disarm_user_wizard());
        }
    }
    if node.ssh.host_keys == rs::HostKeys::Generate {
        host_key = Some(
            derive::host_key(seed, &node.name, &node.hostname)
                .map_err(|e| err(node, NodeConflict::HostKey(e)))?,
        );
    }
    let ssh = SshdConfig {
        enable: node.ssh.enable,
        password_authentication: node.ssh.password_authentication,
        permit_root_login: node.ssh.permit_root_login,
        extra: node.ssh.extra.clone(),
        host_key: host_key.clone(),
    };
    ops.extend(ssh_ops(profile, &ssh));

    let to_entry = |h: &rs::HostEntry| HostsLine {
        address: h.address.to_string(),
        names: h.names.clone(),
    };
    let cluster: Vec<HostsLine> = recipe.cluster_hosts().iter().map(to_entry).collect();
    let extra: Vec<HostsLine> = node.hosts_extra.iter().map(to_entry).collect();
    ops.extend(hosts_ops(
        &node.hostname,
        hosts_file(&node.hostname, node.fqdn.as_deref(), &cluster, &extra),
    ));

    let ifaces = interfaces(node)?;
    let use_netplan =
        profile.family == OsFamily::Ubuntu || (profile.netplan && !profile.network_manager);
    if bake && !ifaces.is_empty() {
        ops.extend(network_ops(use_netplan, &ifaces, seed, &node.name));
    }
    if node.network.ip_forward {
        ops.push(FileOp::Write {
            part: Part::Root,
            path: "/etc/sysctl.d/90-piimage-forwarding.conf".into(),
            data: b"net.ipv4.ip_forward=1\nnet.ipv6.conf.all.forwarding=1\n".to_vec(),
            owner: FileAttrs::root(0o644),
        });
    }
    let mut cmdline_add = node.boot.cmdline_add.clone();
    if let Some(w) = ifaces.iter().find_map(|i| i.wifi.as_ref())
        && profile.is_raspios()
    {
        cmdline_add.push(format!("cfg80211.ieee80211_regdom={}", w.country));
    }
    let config: Vec<(Option<String>, String)> = node
        .boot
        .config_txt
        .iter()
        .map(|c| (c.section.clone(), c.line.clone()))
        .collect();
    // The image's own first-boot steps that would replace the disk id and host keys go first,
    // so that a recipe's own `cmdline.add` can still put a token back.
    let disarm = super::firstboot::disarm(profile, node.boot.grow_root)
        .map_err(|e| err(node, NodeConflict::Firstboot(e)))?;
    ops.extend(super::firstboot::disarm_ops(&disarm));
    ops.extend(boot_ops(&config, &cmdline_add, &node.boot.cmdline_remove));
    ops.extend(mount_ops(&node.mounts));
    if bake {
        if let Some(tz) = &node.timezone {
            ops.extend(timezone_ops(tz));
        }
        if let Some(l) = &node.locale {
            ops.extend(locale_ops(l, &profile.catalog.locales));
        }
        if let Some(k) = &node.keyboard {
            ops.extend(keyboard_ops(&k.layout, k.model.as_deref()));
        }
    }
    let overlays = overlay_ops(node, profile, &users, extras)?;
    let written: Vec<FileOp> = ops.iter().chain(&overlays).cloned().collect();
    let links = enable_links(&node.services.enable, &written, &profile.units)
        .map_err(|e| err(node, NodeConflict::EnableLinks(e)))?;
    for (path, target) in links {
        ops.push(FileOp::Symlink {
            path,
            target,
            uid: 0,
            gid: 0,
        });
    }
    for unit in &node.services.disable {
        // `systemctl mask`: whatever wants the unit, it does not start.
        ops.push(FileOp::Symlink {
            path: format!("/etc/systemd/system/{unit}"),
            target: "/dev/null".into(),
            uid: 0,
            gid: 0,
        });
    }
    ops.extend(overlays);

    if profile.has_cloud_init() {
        if bake {
            ops.push(guard_op(host_key.is_some(), !ifaces.is_empty()));
        }
        if seeds {
            let spec = SeedSpec {
                hostname: node.hostname.clone(),
                fqdn: node.fqdn.clone(),
                users: users.clone(),
                ssh_pwauth: Some(node.ssh.password_authentication)
                    .filter(|_| mode != rs::CloudInitMode::Bake),
                // In bake mode, baked settings are not repeated: cloud-init would apply them again on first
                // boot (and fail the boot if, say, the image lacked the time zone).
                timezone: node
                    .timezone
                    .clone()
                    .filter(|_| mode != rs::CloudInitMode::Bake),
                locale: node
                    .locale
                    .clone()
                    .filter(|_| mode != rs::CloudInitMode::Bake),
                keyboard: node
                    .keyboard
                    .as_ref()
                    .map(|k| k.layout.clone())
                    .filter(|_| mode != rs::CloudInitMode::Bake),
                extra_yaml: if mode == rs::CloudInitMode::Bake {
                    String::new()
                } else {
                    json_to_yaml_lines(&node.cloud_init.user_data)
                },
                passwords_baked: mode == rs::CloudInitMode::Bake,
            };
            let network = (mode != rs::CloudInitMode::Bake && !ifaces.is_empty())
                .then(|| netplan(&ifaces).replace("# Written by piimage.\n", ""));
            ops.extend(seed_ops(
                user_data(&spec),
                meta_data(&node.cloud_init.instance_id, &node.hostname),
                network,
            ));
        }
    }

    let disk_id = match base_disk_id {
        Some(old) if cmdline_uses_partuuid => {
            let new = derive::disk_id(seed, &node.name, old);
            ops.extend(crate::pipeline::identity::partuuid_ops(old, new));
            Some(new)
        }
        _ => None,
    };
    Ok(NodePlan {
        name: node.name.clone(),
        ops,
        disk_id,
        host_key,
        login_user,
        secret_values: extras.values.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::LoadOptions;

    #[test]
    fn user_conflicts_point_at_the_user_or_group_in_the_recipe() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.img"), b"x").unwrap();
        let path = dir.path().join("r.yaml");
        std::fs::write(
            &path,
            "cluster: { name: lab }\nbase: { path: base.img }\nnodes: [{ name: n1 }]\n\
             users:\n  - name: alice\n    groups: [adm, dockr]\n",
        )
        .unwrap();
        let recipe = crate::recipe::load(&path, &LoadOptions::default()).unwrap();
        let node = &recipe.nodes[0];
        let place = |c: NodeConflict| {
            let e = user_err(node, c);
            let at = e.origin().expect("a user's conflict has a place").clone();
            (at.line, at.column, at.field, e.field())
        };
        assert_eq!(
            place(NodeConflict::UnknownGroup {
                user: "alice".into(),
                group: "dockr".into(),
            }),
            (6, 19, "users[0].groups[1]".into(), "users.groups".into())
        );
        assert_eq!(
            place(NodeConflict::UserExists {
                user: "alice".into()
            }),
            (5, 11, "users[0].name".into(), "users.name".into())
        );
        // A conflict about no user of the recipe has no place.
        let e = user_err(node, NodeConflict::UserExists { user: "bob".into() });
        assert!(e.origin().is_none());
        assert_eq!(
            crate::error::chain(&e),
            "node n1: user bob already exists in the image; write `default_user: remove` to \
             replace the image's default user, or choose another name"
        );
    }
}
