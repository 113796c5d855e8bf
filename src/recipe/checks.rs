//! Checks that span nodes: roles in use, unique names and addresses, `build` selection,
//! `route_via`, output file names, and templates rendered for every built node.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::ctx::Ctx;
use super::located::{Located, Origin};
use super::nodes::ExpandedNode;
use super::raw::{RawBuild, RawOutput, RawSettings};
use super::spec::{EntryKind, NodeSpec, OutputSpec, ResolvedRecipe};
use super::{syntax, template};

pub(crate) fn check_roles(
    ctx: &mut Ctx,
    roles: &BTreeMap<String, Located<RawSettings>>,
    nodes: &[ExpandedNode],
) {
    for (name, block) in roles {
        if let Err(e) = syntax::role(name) {
            ctx.problem(&block.at, e);
        } else if !nodes.iter().any(|n| n.role == *name) {
            let used: HashSet<&str> = nodes.iter().map(|n| n.role.as_str()).collect();
            let mut used: Vec<&str> = used.into_iter().collect();
            used.sort_unstable();
            ctx.problem(
                &block.at,
                format!(
                    "no node has role {name:?} (roles in use: {})",
                    used.join(", ")
                ),
            );
        }
    }
}

pub(crate) fn check_unique(ctx: &mut Ctx, nodes: &[ExpandedNode]) {
    let mut names: HashMap<&str, &ExpandedNode> = HashMap::new();
    let mut hostnames: HashMap<&str, &ExpandedNode> = HashMap::new();
    let mut addresses: HashMap<IpAddr, &ExpandedNode> = HashMap::new();
    for n in nodes {
        if let Some(first) = names.insert(&n.name, n) {
            ctx.problem(
                &n.at,
                format!("duplicate node name {:?} (first at {})", n.name, first.at),
            );
            continue;
        }
        let host = n
            .hostname
            .as_ref()
            .map_or(n.name.as_str(), |h| h.value.as_str());
        if let Some(first) = hostnames.insert(host, n) {
            let at = n.hostname.as_ref().map_or(&n.at, |h| &h.at);
            ctx.problem(
                at,
                format!(
                    "duplicate hostname {host:?} (node {:?} has it too)",
                    first.name
                ),
            );
        }
        if let Some(a) = n.address
            && let Some(first) = addresses.insert(a.ip, n)
        {
            let at = n.address_at.as_ref().unwrap_or(&n.at);
            ctx.problem(
                at,
                format!(
                    "duplicate address {}: node {:?} has it too ({})",
                    a.ip,
                    first.name,
                    first.address_at.as_ref().unwrap_or(&first.at)
                ),
            );
        }
    }
}

pub(crate) fn selection(
    ctx: &mut Ctx,
    build: Option<&Located<RawBuild>>,
    nodes: &[ExpandedNode],
) -> Vec<bool> {
    let Some(b) = build else {
        return vec![true; nodes.len()];
    };
    let roles = b.value.roles.as_ref().map(|l| &l.value);
    let names = b.value.nodes.as_ref().map(|l| &l.value);
    for r in roles.into_iter().flatten() {
        if !nodes.iter().any(|n| n.role == r.value) {
            ctx.problem(&r.at, format!("no node has role {:?}", r.value));
        }
    }
    for n in names.into_iter().flatten() {
        if !nodes.iter().any(|x| x.name == n.value) {
            ctx.problem(&n.at, format!("no node is called {:?}", n.value));
        }
    }
    let sel: Vec<bool> = nodes
        .iter()
        .map(|n| {
            roles.is_some_and(|rs| rs.iter().any(|r| r.value == n.role))
                || names.is_some_and(|ns| ns.iter().any(|x| x.value == n.name))
        })
        .collect();
    if !sel.iter().any(|s| *s) {
        ctx.problem(&b.at, "`build` selects no node");
    }
    sel
}

/// `route_via` names another node, and following it never loops.
pub(crate) fn check_route_via(ctx: &mut Ctx, nodes: &[NodeSpec], origins: &[Origin]) {
    let by_name: HashMap<&str, &NodeSpec> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    for (n, at) in nodes.iter().zip(origins) {
        let Some(via) = &n.network.route_via else {
            continue;
        };
        if via == &n.name {
            ctx.problem(at, format!("node {:?} cannot route via itself", n.name));
            continue;
        }
        if !by_name.contains_key(via.as_str()) {
            ctx.problem(at, format!("no node is called {via:?}"));
            continue;
        }
        let mut seen = vec![n.name.as_str()];
        let mut cur = via.as_str();
        while let Some(next) = by_name
            .get(cur)
            .and_then(|x| x.network.route_via.as_deref())
        {
            seen.push(cur);
            if seen.contains(&next) {
                seen.push(next);
                ctx.problem(at, format!("route_via loops: {}", seen.join(" -> ")));
                break;
            }
            cur = next;
        }
    }
}

pub(crate) fn check_output_names(
    ctx: &mut Ctx,
    output: &(OutputSpec, Option<Origin>),
    cluster: &str,
    nodes: &[NodeSpec],
    raw: Option<&Located<RawOutput>>,
    top: &Origin,
) {
    let mut seen: HashMap<String, &str> = HashMap::new();
    let at = || {
        output
            .1
            .clone()
            .or_else(|| raw.map(|o| o.at.clone()))
            .unwrap_or_else(|| top.child("output"))
    };
    for n in nodes.iter().filter(|n| n.selected) {
        let stem = output.0.file_stem(cluster, n);
        if !output.0.name.is_empty()
            && let Err(why) = plain_file_stem(&stem)
        {
            ctx.problem(
                &at(),
                format!("node {:?} would be written as {stem:?}: {why}", n.name),
            );
            break;
        }
        if let Some(first) = seen.insert(stem.clone(), &n.name).filter(|f| *f != n.name) {
            ctx.problem(
                &at(),
                format!(
                    "nodes {first:?} and {:?} would both be written as {stem:?}; put {{node}} in \
                     the output name",
                    n.name
                ),
            );
            break;
        }
    }
}

/// The longest output file stem: room is left for `.img.bmap` and the hidden partial name
/// (`.STEM.img.bmap.partial-XXXXXX`) within the 255 bytes of a file name.
pub const MAX_OUTPUT_STEM: usize = 200;

/// An output stem is a plain file name: ASCII letters, digits, `.`, `_`, `-`, not hidden, at
/// most [`MAX_OUTPUT_STEM`] bytes.
fn plain_file_stem(stem: &str) -> Result<(), String> {
    if stem.is_empty() {
        return Err("an output name must not be empty".to_owned());
    }
    if stem.starts_with('.') {
        return Err(
            "a name starting with `.` would be a hidden file (and piimage keeps its \
                    partial files under such names)"
                .to_owned(),
        );
    }
    if let Some(c) = stem
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(format!(
            "{c:?} cannot be in an output name (ASCII letters, digits, `.`, `_` and `-` only)"
        ));
    }
    if stem.len() > MAX_OUTPUT_STEM {
        return Err(format!(
            "{} bytes is too long for an output name (at most {MAX_OUTPUT_STEM})",
            stem.len()
        ));
    }
    Ok(())
}

/// Renders every template for every node that builds it, so undefined variables show up now.
pub(crate) fn check_templates(ctx: &mut Ctx, recipe: &ResolvedRecipe) {
    let origins: HashMap<PathBuf, Origin> = ctx
        .overlays
        .iter()
        .filter_map(|(at, spec)| spec.as_ref().map(|s| (s.source.clone(), at.clone())))
        .collect();
    let mut failed: HashSet<PathBuf> = HashSet::new();
    let mut sources: HashMap<PathBuf, String> = HashMap::new();
    let shared = template::Shared::new(recipe, &template::placeholder_extras(recipe));
    for node in recipe.selected() {
        let has_templates = node
            .overlays
            .iter()
            .any(|ov| ov.entries.iter().any(|e| e.kind == EntryKind::Template));
        if !has_templates {
            continue;
        }
        let context = shared.context(node);
        for ov in &node.overlays {
            for e in ov.entries.iter().filter(|e| e.kind == EntryKind::Template) {
                if failed.contains(&e.source) {
                    continue;
                }
                let source = sources.entry(e.source.clone()).or_insert_with(|| {
                    crate::io::bounded::read_to_string(
                        &e.source,
                        crate::io::bounded::TEMPLATE_LIMIT,
                    )
                    .unwrap_or_default()
                });
                let shown = e.source.display().to_string();
                if let Err(err) = template::render(&shown, source, &context) {
                    failed.insert(e.source.clone());
                    let at = origins
                        .get(&ov.source)
                        .cloned()
                        .unwrap_or_else(|| Origin::file_start(Arc::from(recipe.file.as_path())));
                    ctx.problem(
                        &at,
                        format!("template {err} (rendering for node {:?})", node.name),
                    );
                }
            }
        }
    }
}
