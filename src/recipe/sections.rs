//! The smaller node settings: `ssh`, `hosts`, `cloud_init`, `boot`, `mounts`, `timezone`,
//! `locale`, `keyboard`, `services`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::ctx::Ctx;
use super::located::{Located, Origin, StrOr};
use super::net;
use super::raw::{
    PoeHat, RawBoot, RawCloudInit, RawConfigLine, RawHardware, RawHosts, RawKeyboard, RawMount,
    RawServices, RawSsh,
};
use super::spec::{
    BootSpec, CloudInitMode, CloudInitSpec, ConfigLine, HostEntry, HostKeys, KeyboardSpec, Medium,
    MountSpec, ServicesSpec, SshSpec,
};
use super::syntax;

/// sshd keywords the recipe sets through its own fields (or that a drop-in cannot hold).
const SSH_KEYWORDS_REFUSED: &[(&str, &str)] = &[
    (
        "passwordauthentication",
        "use `ssh.password_authentication`",
    ),
    ("permitrootlogin", "use `ssh.permit_root_login`"),
    ("hostkey", "use `ssh.host_keys`"),
    ("match", "a Match block cannot be written as one setting"),
    ("include", "Include is not allowed in piimage's drop-in"),
];

/// user-data keys piimage writes from the recipe's own fields.
const USER_DATA_OWNED: &[(&str, &str)] = &[
    ("users", "users"),
    ("user", "users"),
    ("chpasswd", "users[].password"),
    ("password", "users[].password"),
    ("ssh_authorized_keys", "users[].ssh_authorized_keys"),
    ("ssh_pwauth", "ssh.password_authentication"),
    ("hostname", "the node's name or hostname"),
    ("fqdn", "cluster.domain"),
    ("timezone", "timezone"),
    ("locale", "locale"),
    ("keyboard", "keyboard"),
    ("manage_etc_hosts", "hosts (piimage bakes /etc/hosts)"),
];

pub(crate) fn ssh(ctx: &mut Ctx, raw: Option<&Located<RawSsh>>) -> SshSpec {
    let flag = |v: &Option<Located<bool>>, default| v.as_ref().map_or(default, |b| b.value);
    let Some(r) = raw.map(|r| &r.value) else {
        return SshSpec {
            enable: true,
            password_authentication: false,
            permit_root_login: false,
            host_keys: HostKeys::Generate,
            extra: Vec::new(),
            identity_file: None,
            identities_only: false,
        };
    };
    let mut extra = Vec::new();
    for (key, value) in r.extra.iter().flat_map(|e| &e.value) {
        let valid_key = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && key.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid_key {
            ctx.problem(&value.at, format!("{key:?} is not an sshd_config keyword"));
            continue;
        }
        if let Some((_, why)) = SSH_KEYWORDS_REFUSED
            .iter()
            .find(|(k, _)| key.eq_ignore_ascii_case(k))
        {
            ctx.problem(&value.at, format!("{key} cannot go in `ssh.extra`: {why}"));
            continue;
        }
        let text = match &value.value {
            Value::String(s) if !s.is_empty() && !s.contains(['\n', '\r']) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => (if *b { "yes" } else { "no" }).to_owned(),
            _ => {
                ctx.problem(
                    &value.at,
                    "an sshd setting is one line: a string, a number, or true/false (yes/no)",
                );
                continue;
            }
        };
        extra.push((key.clone(), text));
    }
    let identity_file = r.identity_file.as_ref().and_then(|i| {
        ctx.check(&i.at, identity_file(&i.value))?;
        Some(i.value.clone())
    });
    let identities_only = match (&r.identities_only, &identity_file) {
        (Some(b), None) if b.value && r.identity_file.is_none() => {
            ctx.problem(
                &b.at,
                "identities_only needs `identity_file`: the key to offer instead of all others",
            );
            false
        }
        (Some(b), _) => b.value,
        (None, i) => i.is_some(),
    };
    SshSpec {
        enable: flag(&r.enable, true),
        password_authentication: flag(&r.password_authentication, false),
        permit_root_login: flag(&r.permit_root_login, false),
        host_keys: r.host_keys.as_ref().map_or(HostKeys::Generate, |h| h.value),
        extra,
        identity_file,
        identities_only,
    }
}

/// Checks `ssh.identity_file`: a path on the operator's machine that `ssh_config`,
/// Ansible and a shell all read the same way.
fn identity_file(path: &str) -> Result<(), String> {
    if !(path.starts_with("~/") || path.starts_with('/')) || path.len() < 3 {
        return Err(format!(
            "{path:?}: give the private key as `~/...` or an absolute path (a relative one would \
             be relative to wherever ssh runs)"
        ));
    }
    if let Some(c) = path
        .chars()
        .find(|c| c.is_control() || *c == '"' || *c == '\'')
    {
        return Err(format!(
            "{path:?}: {c:?} cannot appear in an IdentityFile path"
        ));
    }
    if path.contains('%') || path.contains("${") || path.contains("{{") || path.contains("{%") {
        return Err(format!(
            "{path:?}: `%`, `${{` and `{{{{` would be expanded by ssh or Ansible; give the path \
             literally"
        ));
    }
    if path.ends_with(".pub") {
        return Err(format!(
            "{path:?} is a public key: name the private key (the same path without .pub)"
        ));
    }
    Ok(())
}

pub(crate) fn hosts_extra(ctx: &mut Ctx, raw: Option<&Located<RawHosts>>) -> Vec<HostEntry> {
    let mut out = Vec::new();
    for e in raw
        .iter()
        .flat_map(|h| &h.value.extra)
        .flat_map(|x| &x.value)
    {
        let address = ctx.check(&e.value.address.at, net::ip(&e.value.address.value));
        let mut names = Vec::new();
        for n in &e.value.names.value {
            if ctx.check(&n.at, syntax::domain(&n.value)).is_some() {
                names.push(n.value.clone());
            }
        }
        if e.value.names.value.is_empty() {
            ctx.problem(&e.value.names.at, "a hosts entry needs at least one name");
        }
        if let Some(address) = address
            && !names.is_empty()
        {
            out.push(HostEntry { address, names });
        }
    }
    out
}

/// Checks `{placeholder}`s in a template against `allowed`.
pub(crate) fn check_placeholders(template: &str, allowed: &[&str]) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("{template:?}: unmatched }}"));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("{template:?}: unclosed {{"))?;
        let name = &rest[open + 1..open + close];
        if !allowed.contains(&name) {
            let list: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
            return Err(format!(
                "{template:?}: unknown placeholder {{{name}}}; use {}",
                list.join(", ")
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

/// The default `cloud_init.instance_id`.
pub const DEFAULT_INSTANCE_ID: &str = "{cluster}-{node}";

pub(crate) fn cloud_init(
    ctx: &mut Ctx,
    raw: Option<&Located<RawCloudInit>>,
    cluster: &str,
    node: &str,
) -> CloudInitSpec {
    let r = raw.map(|r| &r.value);
    let mode = r
        .and_then(|r| r.mode.as_ref())
        .map_or(CloudInitMode::Bake, |m| m.value);
    let mut user_data = Map::new();
    if let Some(ud) = r.and_then(|r| r.user_data.as_ref()) {
        if mode == CloudInitMode::Bake && !ud.value.is_empty() {
            ctx.problem(
                &ud.at,
                "`user_data` is only written in `mode: seed` or `mode: both`; with `mode: bake` \
                 nothing would read it",
            );
        }
        for key in ud.value.keys() {
            if let Some((_, field)) = USER_DATA_OWNED.iter().find(|(k, _)| k == key) {
                ctx.problem(
                    &ud.at.child(key),
                    format!("piimage writes `{key}` from the recipe; set it with `{field}`"),
                );
            }
        }
        user_data.clone_from(&ud.value);
    }
    let template = r
        .and_then(|r| r.instance_id.as_ref())
        .map_or(DEFAULT_INSTANCE_ID.to_owned(), |t| t.value.clone());
    if let Some(t) = r.and_then(|r| r.instance_id.as_ref()) {
        let chars_ok = t
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "{}-_.".contains(c));
        if !chars_ok || t.value.is_empty() {
            ctx.problem(
                &t.at,
                "an instance id uses letters, digits, - _ . and {cluster}/{node}",
            );
        } else {
            ctx.check(&t.at, check_placeholders(&t.value, &["cluster", "node"]));
        }
    }
    CloudInitSpec {
        mode,
        user_data,
        instance_id: template
            .replace("{cluster}", cluster)
            .replace("{node}", node),
    }
}

/// Fan steps a PoE HAT overlay takes (`poe_fan_temp0` to `poe_fan_temp3`).
const MAX_FAN_STEPS: usize = 4;

/// The `hardware` settings (and, for `output.medium: nvme`, the Pi 5's PCIe connector) as
/// `config.txt` lines, each with where it was written, in the order they are added: after the
/// recipe's own `boot.config_txt` lines (docs/hardware.md says which line does what).
pub(crate) fn hardware(
    ctx: &mut Ctx,
    raw: Option<&Located<RawHardware>>,
    medium: Option<(Medium, &Origin)>,
) -> Vec<(ConfigLine, Origin)> {
    let mut out = Vec::new();
    let all = |line: String| ConfigLine {
        section: None,
        line,
    };
    let pi5 = |line: &str| ConfigLine {
        section: Some("pi5".into()),
        line: line.to_owned(),
    };
    let hw = raw.map(|r| &r.value);
    if let Some(h) = hw {
        // The fan steps go on the overlay's own line, so that they cannot apply to another
        // overlay loaded after it (a `dtparam=` line sets the parameters of the last one).
        let mut params = Vec::new();
        if let Some(fan) = &h.poe_fan {
            if h.poe_hat.is_none() {
                ctx.problem(
                    &fan.at,
                    "poe_fan sets the fan of a PoE HAT: say which with `poe_hat: poe` or \
                     `poe_hat: poe_plus`",
                );
            }
            if fan.value.is_empty() || fan.value.len() > MAX_FAN_STEPS {
                ctx.problem(
                    &fan.at,
                    format!(
                        "the PoE HAT fan has 1 to {MAX_FAN_STEPS} steps (this lists {})",
                        fan.value.len()
                    ),
                );
            }
            let mut last: Option<u32> = None;
            for (i, step) in fan.value.iter().enumerate().take(MAX_FAN_STEPS) {
                let t = &step.value.temp;
                let hyst = step.value.hysteresis.as_ref().map_or(2, |h| h.value);
                if !(20..=100).contains(&t.value) {
                    ctx.problem(
                        &t.at,
                        format!(
                            "{} °C: a fan step is between 20 and 100 °C (degrees, not \
                             millidegrees)",
                            t.value
                        ),
                    );
                } else if last.is_some_and(|l| t.value <= l) {
                    ctx.problem(
                        &t.at,
                        format!(
                            "{} °C: each fan step is hotter than the one before it",
                            t.value
                        ),
                    );
                }
                if let Some(h) = &step.value.hysteresis
                    && (h.value > 20 || h.value >= t.value)
                {
                    ctx.problem(
                        &h.at,
                        format!(
                            "hysteresis {} °C: at most 20 °C, and below the step's temperature",
                            h.value
                        ),
                    );
                }
                last = Some(t.value);
                params.push(format!(
                    "poe_fan_temp{i}={},poe_fan_temp{i}_hyst={}",
                    u64::from(t.value) * 1000,
                    u64::from(hyst) * 1000
                ));
            }
        }
        if let Some(hat) = &h.poe_hat {
            let overlay = match hat.value {
                PoeHat::Poe => "rpi-poe",
                PoeHat::PoePlus => "rpi-poe-plus",
            };
            let line = std::iter::once(format!("dtoverlay={overlay}"))
                .chain(params)
                .collect::<Vec<_>>()
                .join(",");
            out.push((all(line), hat.at.clone()));
        }
        if let Some(w) = h.wifi.as_ref().filter(|w| !w.value) {
            out.push((all("dtoverlay=disable-wifi".into()), w.at.clone()));
        }
        if let Some(b) = h.bluetooth.as_ref().filter(|b| !b.value) {
            out.push((all("dtoverlay=disable-bt".into()), b.at.clone()));
        }
    }
    let pcie = hw.and_then(|h| h.pcie_gen.as_ref());
    match pcie {
        Some(g) if g.value == 2 || g.value == 3 => {
            out.push((pi5("dtparam=pciex1"), g.at.clone()));
            if g.value == 3 {
                out.push((pi5("dtparam=pciex1_gen=3"), g.at.clone()));
            }
        }
        Some(g) => ctx.problem(
            &g.at,
            format!(
                "pcie_gen {}: the Raspberry Pi 5's PCIe connector runs at generation 2 (its \
                 certified speed) or 3",
                g.value
            ),
        ),
        None => {
            // An NVMe drive on a Pi 5 is on the PCIe connector, which is off unless the M.2
            // board identifies itself: turn it on.
            if let Some((Medium::Nvme, at)) = medium {
                out.push((pi5("dtparam=pciex1"), at.clone()));
            }
        }
    }
    out
}

/// The boot settings, and where each kept `config_txt` line was written.
pub(crate) fn boot(ctx: &mut Ctx, raw: Option<&Located<RawBoot>>) -> (BootSpec, Vec<Origin>) {
    let mut spec = BootSpec::default();
    let mut origins = Vec::new();
    let Some(r) = raw.map(|r| &r.value) else {
        return (spec, origins);
    };
    if let Some(g) = &r.grow_root {
        spec.grow_root = g.value;
    }
    for l in r.config_txt.iter().flat_map(|c| &c.value) {
        let (line, section) = match &l.value {
            StrOr::Str(s) => (s.as_str(), None),
            StrOr::Full(RawConfigLine { line, section }) => (line.value.as_str(), section.as_ref()),
        };
        let line_at = match &l.value {
            StrOr::Full(RawConfigLine { line, .. }) => &line.at,
            StrOr::Str(_) => &l.at,
        };
        let mut ok = true;
        if line.trim().is_empty() || line.contains(['\n', '\r']) {
            ctx.problem(line_at, "a config.txt line is one non-empty line");
            ok = false;
        } else if line.trim_start().starts_with('[') {
            ctx.problem(
                line_at,
                format!(
                    "{line:?} is a section header: write `{{ line: ..., section: NAME }}` instead"
                ),
            );
            ok = false;
        }
        if let Some(s) = section {
            ok &= ctx.check(&s.at, syntax::config_section(&s.value)).is_some();
        }
        if ok {
            spec.config_txt.push(ConfigLine {
                section: section.map(|s| s.value.clone()),
                line: line.trim().to_owned(),
            });
            origins.push(line_at.clone());
        }
    }
    if let Some(cmd) = &r.cmdline {
        fn tokens<'a>(
            ctx: &mut Ctx,
            list: &'a Option<Located<Vec<Located<String>>>>,
        ) -> Vec<(String, &'a Located<String>)> {
            let mut out = Vec::new();
            for t in list.iter().flat_map(|l| &l.value) {
                if ctx.check(&t.at, syntax::cmdline_token(&t.value)).is_some() {
                    out.push((t.value.clone(), t));
                }
            }
            out
        }
        let add = tokens(ctx, &cmd.value.add);
        let remove = tokens(ctx, &cmd.value.remove);
        for (t, at) in &remove {
            if add.iter().any(|(a, _)| a == t) {
                ctx.problem(&at.at, format!("{t:?} is both added and removed"));
            }
        }
        spec.cmdline_add = add.into_iter().map(|(t, _)| t).collect();
        spec.cmdline_remove = remove.into_iter().map(|(t, _)| t).collect();
    }
    (spec, origins)
}

pub(crate) fn mounts(
    ctx: &mut Ctx,
    raw: Option<&Located<Vec<Located<RawMount>>>>,
) -> Vec<MountSpec> {
    let mut out = Vec::new();
    let mut targets: HashMap<String, String> = HashMap::new();
    for m in raw.iter().flat_map(|l| &l.value) {
        let r = &m.value;
        let no_space = |ctx: &mut Ctx, v: &Located<String>, what: &str| {
            if v.value.is_empty() || v.value.chars().any(char::is_whitespace) {
                ctx.problem(
                    &v.at,
                    format!("the mount {what} must be non-empty, without spaces"),
                );
                false
            } else {
                true
            }
        };
        let mut ok = no_space(ctx, &r.source, "source");
        let target_ok = ctx
            .check(&r.target.at, syntax::image_path(&r.target.value))
            .is_some()
            && no_space(ctx, &r.target, "target");
        ok &= target_ok;
        if target_ok && r.target.value == "/" {
            ctx.problem(&r.target.at, "cannot mount over /");
            ok = false;
        }
        let fstype_ok = !r.r#type.value.is_empty()
            && r.r#type
                .value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._".contains(c));
        if !fstype_ok {
            ctx.problem(
                &r.r#type.at,
                format!(
                    "{:?} is not a filesystem type (nfs, nfs4, cifs, ext4, ...)",
                    r.r#type.value
                ),
            );
            ok = false;
        }
        let options = match &r.options {
            Some(o) => {
                ok &= no_space(ctx, o, "options");
                o.value.clone()
            }
            None => "defaults".to_owned(),
        };
        if let Some(first) = targets.insert(r.target.value.clone(), r.target.at.to_string()) {
            ctx.problem(
                &r.target.at,
                format!("{} is already mounted by {first}", r.target.value),
            );
            ok = false;
        }
        if ok {
            out.push(MountSpec {
                source: r.source.value.clone(),
                target: r.target.value.clone(),
                fstype: r.r#type.value.clone(),
                options,
                create: r.create.as_ref().is_none_or(|c| c.value),
            });
        }
    }
    out
}

/// The keyboard, and where its layout was written.
pub(crate) fn keyboard(
    ctx: &mut Ctx,
    raw: Option<&Located<StrOr<RawKeyboard>>>,
) -> Option<(KeyboardSpec, Origin)> {
    let k = raw?;
    match &k.value {
        StrOr::Str(layout) => {
            ctx.check(&k.at, syntax::xkb_name(layout))?;
            Some((
                KeyboardSpec {
                    layout: layout.clone(),
                    model: None,
                },
                k.at.clone(),
            ))
        }
        StrOr::Full(RawKeyboard { layout, model }) => {
            ctx.check(&layout.at, syntax::xkb_name(&layout.value))?;
            if let Some(m) = model {
                ctx.check(&m.at, syntax::xkb_name(&m.value))?;
            }
            Some((
                KeyboardSpec {
                    layout: layout.value.clone(),
                    model: model.as_ref().map(|m| m.value.clone()),
                },
                layout.at.clone(),
            ))
        }
    }
}

pub(crate) fn services(ctx: &mut Ctx, raw: Option<&Located<RawServices>>) -> ServicesSpec {
    let mut spec = ServicesSpec::default();
    let Some(r) = raw.map(|r| &r.value) else {
        return spec;
    };
    for (list, out) in [
        (&r.enable, &mut spec.enable),
        (&r.disable, &mut spec.disable),
    ] {
        for u in list.iter().flat_map(|l| &l.value) {
            if let Some(name) = ctx.check(&u.at, syntax::unit_name(&u.value))
                && !out.contains(&name)
            {
                out.push(name);
            }
        }
    }
    if let Some(d) = &r.disable {
        for u in &d.value {
            if let Ok(name) = syntax::unit_name(&u.value)
                && spec.enable.contains(&name)
            {
                ctx.problem(&u.at, format!("{name} is both enabled and disabled"));
            }
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        check_placeholders("{cluster}-{node}", &["cluster", "node"]).unwrap();
        check_placeholders("plain", &["node"]).unwrap();
        assert!(
            check_placeholders("{nod}", &["node"])
                .unwrap_err()
                .contains("{node}")
        );
        assert!(check_placeholders("{node", &["node"]).is_err());
        assert!(check_placeholders("node}", &["node"]).is_err());
    }
}
