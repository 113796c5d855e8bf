//! From the merged raw recipe to a [`ResolvedRecipe`]: recipe-level fields ([`super::fields`]),
//! node expansion, per-node settings (recipe, then role, then node), and the checks that span
//! nodes ([`super::checks`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::checks;
use super::ctx::{Ctx, LoadOptions};
use super::error::RecipeError;
use super::fields;
use super::load::Loaded;
use super::located::{Located, Origin};
use super::merge::Merge;
use super::nodes::{self, ExpandedNode};
use super::raw::{RawRecipe, RawSettings};
use super::spec::{ClusterSpec, DEFAULT_EPOCH, Medium, NodeSpec, ResolvedRecipe, SettingOrigins};
use super::template::RESERVED_VARS;
use super::{network, overlay, sections, syntax, users};

/// Earliest `epoch`: FAT timestamps start in 1980.
pub const MIN_EPOCH: i64 = 315_532_800;
/// Latest `epoch` (2099-12-31T23:59:59Z).
pub const MAX_EPOCH: i64 = 4_102_444_799;

/// Resolves a loaded recipe (see the module docs).
pub(crate) fn resolve(
    file: &Path,
    loaded: Loaded,
    options: &LoadOptions,
) -> Result<ResolvedRecipe, RecipeError> {
    let mut ctx = Ctx::new(options.clone());
    let top = Origin::file_start(Arc::from(file));
    let mut r: RawRecipe = loaded.recipe;
    let cluster = fields::cluster(&mut ctx, r.cluster.as_ref(), &top);
    let (base, base_overridden) =
        fields::base(&mut ctx, r.base.as_ref(), options.base.as_deref(), &top);
    let seed = r.seed.as_ref().and_then(|s| ctx.secret(s, true, ""));
    let secrets = super::secrets::section(&mut ctx, r.secrets.as_ref(), r.seed.is_some());
    let epoch = match &r.epoch {
        Some(e) if !(MIN_EPOCH..=MAX_EPOCH).contains(&e.value) => {
            ctx.problem(
                &e.at,
                format!(
                    "epoch {} is out of range: FAT timestamps run from 1980 ({MIN_EPOCH}) to \
                     2099 ({MAX_EPOCH}); use Unix seconds, e.g. `date +%s`",
                    e.value
                ),
            );
            DEFAULT_EPOCH
        }
        Some(e) => e.value,
        None => DEFAULT_EPOCH,
    };
    let output = fields::output(&mut ctx, r.output.as_ref());
    let top_settings = r.take_settings();
    let roles: BTreeMap<String, Located<RawSettings>> =
        r.roles.take().map(|l| l.value).unwrap_or_default();
    let entries: Vec<Located<super::raw::RawNode>> = match r.nodes.take() {
        Some(n) if !n.value.is_empty() => n.value,
        Some(n) => {
            ctx.problem(
                &n.at,
                "empty: list at least one node (`name`) or range (`range`)",
            );
            Vec::new()
        }
        None => {
            ctx.problem(
                &top.child("nodes"),
                "missing: list at least one node (`name`) or range (`range`)",
            );
            Vec::new()
        }
    };
    let mut blocks: Vec<&RawSettings> = vec![&top_settings];
    blocks.extend(roles.values().map(|r| &r.value));
    let taken = nodes::taken_addresses(&entries, &blocks);
    let expanded = nodes::expand(&entries, taken, &mut ctx.problems);
    checks::check_roles(&mut ctx, &roles, &expanded);
    checks::check_unique(&mut ctx, &expanded);
    let selected = checks::selection(&mut ctx, r.build.as_ref(), &expanded);
    let medium_at = r
        .output
        .as_ref()
        .and_then(|o| o.value.medium.as_ref())
        .map(|m| m.at.clone());
    let medium = medium_at.as_ref().map(|at| (output.0.medium, at));
    let mut node_specs = Vec::with_capacity(expanded.len());
    let mut route_origins = Vec::with_capacity(expanded.len());
    for (exp, sel) in expanded.iter().zip(selected) {
        let mut settings = top_settings.clone();
        if let Some(role) = roles.get(&exp.role) {
            settings.merge(role.value.clone());
        }
        settings.merge(exp.settings.clone());
        let (spec, route_at) = node(&mut ctx, &cluster, exp, settings, sel, medium);
        node_specs.push(spec);
        route_origins.push(route_at.unwrap_or_else(|| exp.at.clone()));
    }
    checks::check_route_via(&mut ctx, &node_specs, &route_origins);
    checks::check_output_names(
        &mut ctx,
        &output,
        &cluster.name,
        &node_specs,
        r.output.as_ref(),
        &top,
    );
    let netboot = super::netboot::section(
        &mut ctx,
        r.netboot.as_ref(),
        &output.0.formats,
        r.output
            .as_ref()
            .and_then(|o| o.value.formats.as_ref())
            .map(|f| &f.at),
        &node_specs,
        &top,
    );
    let recipe = ResolvedRecipe {
        file: file.to_owned(),
        chain: loaded.chain,
        cluster,
        base,
        base_overridden,
        seed,
        epoch,
        output: output.0,
        nodes: node_specs,
        netboot,
        secrets,
    };
    if ctx.problems.is_empty() {
        checks::check_templates(&mut ctx, &recipe);
    }
    ctx.problems.finish(recipe)
}

fn node(
    ctx: &mut Ctx,
    cluster: &ClusterSpec,
    exp: &ExpandedNode,
    s: RawSettings,
    selected: bool,
    medium: Option<(Medium, &Origin)>,
) -> (NodeSpec, Option<Origin>) {
    let hostname = match &exp.hostname {
        Some(h) => {
            ctx.check(&h.at, syntax::hostname_label(&h.value));
            h.value.clone()
        }
        None => exp.name.clone(),
    };
    let mut vars = serde_json::Map::new();
    if let Some(v) = &s.vars {
        for key in v.value.keys() {
            if RESERVED_VARS.contains(&key.as_str()) {
                ctx.problem(
                    &v.at.child(key),
                    format!(
                        "{key:?} is reserved: templates use `node`, `nodes`, `cluster`, \
                         `roles`, `secrets` and `host_keys` for piimage's own variables; \
                         rename it"
                    ),
                );
            } else {
                ctx.check(&v.at.child(key), syntax::var_name(key));
            }
        }
        vars.clone_from(&v.value);
    }
    let default_user = users::default_user(ctx, s.default_user.as_ref());
    let users = users::users(ctx, s.users.as_ref(), &default_user);
    let address = exp.address.zip(exp.address_at.as_ref());
    let route_via_at = s
        .network
        .as_ref()
        .and_then(|n| n.value.route_via.as_ref())
        .map(|r| {
            ctx.check(&r.at, syntax::hostname_label(&r.value));
            r.at.clone()
        });
    let (mut boot, mut config_origins) = sections::boot(ctx, s.boot.as_ref());
    for (line, at) in sections::hardware(ctx, s.hardware.as_ref(), medium) {
        boot.config_txt.push(line);
        config_origins.push(at);
    }
    let keyboard = sections::keyboard(ctx, s.keyboard.as_ref());
    let timezone = s.timezone.as_ref().and_then(|t| {
        ctx.check(&t.at, syntax::timezone(&t.value))
            .map(|()| (t.value.clone(), t.at.clone()))
    });
    let locale = s.locale.as_ref().and_then(|l| {
        ctx.check(&l.at, syntax::locale(&l.value))
            .map(|()| (l.value.clone(), l.at.clone()))
    });
    let origins = SettingOrigins {
        timezone: timezone.as_ref().map(|t| t.1.clone()),
        locale: locale.as_ref().map(|l| l.1.clone()),
        keyboard: keyboard.as_ref().map(|k| k.1.clone()),
        config_txt: config_origins,
    };
    let spec = NodeSpec {
        fqdn: cluster.domain.as_ref().map(|d| format!("{hostname}.{d}")),
        name: exp.name.clone(),
        hostname,
        address: exp.address,
        access_address: exp.access_address,
        role: exp.role.clone(),
        index: exp.index,
        boot_id: exp.boot_id.clone(),
        selected,
        vars,
        users,
        default_user,
        ssh: sections::ssh(ctx, s.ssh.as_ref()),
        hosts_extra: sections::hosts_extra(ctx, s.hosts.as_ref()),
        network: network::network(ctx, s.network.as_ref(), address),
        cloud_init: sections::cloud_init(ctx, s.cloud_init.as_ref(), &cluster.name, &exp.name),
        boot,
        mounts: sections::mounts(ctx, s.mounts.as_ref()),
        timezone: timezone.map(|t| t.0),
        locale: locale.map(|l| l.0),
        keyboard: keyboard.map(|k| k.0),
        services: sections::services(ctx, s.services.as_ref()),
        overlays: overlay::overlays(ctx, s.overlays.as_ref()),
        origins,
    };
    (spec, route_via_at)
}
