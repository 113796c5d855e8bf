//! `.j2` templates in overlays: the Jinja environment piimage uses (minijinja), the
//! variables a template sees, and rendering.
//!
//! A template sees:
//! - every variable in the node's merged `vars`, by name (`{{ k3s_url }}`);
//! - `node`: `name`, `hostname`, `fqdn`, `address` (IP or none), `prefix`, `cidr`
//!   (`10.0.0.11/24` or none), `role`, `index` (number in a range name, or none);
//! - `cluster`: `name`, `domain`, `description`;
//! - `nodes`: every node of the cluster, each shaped like `node`;
//! - `roles`: role name to the list of its nodes;
//! - `secrets`: each `secrets:` entry of the recipe by name (a string; `.private` and
//!   `.public` for a key pair), the same on every node;
//! - `host_keys`: node name to its SSH host public key (`ssh-ed25519 AAAA…`), for each node
//!   whose host key piimage generates (`ssh.host_keys: generate`).
//!
//! `validate` renders with stand-ins for `secrets` and `host_keys` (it reads no secret and
//! derives no key); `plan` and `build` render with the real values.
//!
//! Undefined variables are errors (strict mode), and a template's final newline is kept, so a
//! rendered config file ends as its template does.
//!
//! A render is bounded by minijinja's fuel ([`FUEL`]): every instruction and every 64 bytes of
//! data a template creates (output, `set` captures, concatenated or repeated strings, lists)
//! costs fuel, so neither a loop of 10^10 iterations nor a string doubled 40 times can hang
//! piimage or exhaust memory; they fail with [`OUT_OF_FUEL`] and the template's name.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value, json};

use super::spec::{NodeSpec, ResolvedRecipe};

/// Names a template sees besides the node's `vars`; a var cannot use them.
pub const RESERVED_VARS: &[&str] = &["node", "nodes", "cluster", "roles", "secrets", "host_keys"];

/// The fuel of one render: about a million instructions or 64 MB of data (a `/etc/hosts` for
/// 4096 nodes takes under 5 % of it).
pub const FUEL: u64 = 1_000_000;

/// What an exhausted render reports.
pub const OUT_OF_FUEL: &str = "the template does more work than piimage allows one template \
     (about a million steps or 64 MB of text): a loop or a string that grows without bound?";

/// The environment templates are parsed and rendered in.
#[must_use]
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
        env.set_syntax(syntax);
    }
    env
}

/// `file:line: kind: detail` for a template error.
#[must_use]
pub fn describe(e: &minijinja::Error, file: &str) -> String {
    let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        return format!("{file}{line}: {OUT_OF_FUEL}");
    }
    match e.detail() {
        Some(d) => format!("{file}{line}: {}: {d}", e.kind()),
        None => format!("{file}{line}: {}", e.kind()),
    }
}

/// Parses a template, for syntax errors.
///
/// # Errors
/// The syntax error, described with `file` and line.
pub fn check_syntax(file: &str, source: &str) -> Result<(), String> {
    let env = environment();
    env.template_from_named_str(file, source)
        .map(|_| ())
        .map_err(|e| describe(&e, file))
}

/// Renders a template for one node.
///
/// # Errors
/// Syntax errors and undefined variables, described with `file` and line.
pub fn render(file: &str, source: &str, context: &minijinja::Value) -> Result<String, String> {
    let env = environment();
    let t = env
        .template_from_named_str(file, source)
        .map_err(|e| describe(&e, file))?;
    t.render(context).map_err(|e| describe(&e, file))
}

fn node_value(n: &NodeSpec) -> Value {
    json!({
        "name": n.name,
        "hostname": n.hostname,
        "fqdn": n.fqdn,
        "address": n.address.map(|a| a.ip.to_string()),
        "prefix": n.address.and_then(|a| a.prefix),
        "cidr": n.address.filter(|a| a.prefix.is_some()).map(|a| a.to_string()),
        "role": n.role,
        "index": n.index,
    })
}

/// Stand-ins for `secrets` and `host_keys` (see [`context`]), for rendering without the real
/// values: a token is `<secret NAME>`, a key pair's halves say what they stand for.
#[must_use]
pub fn placeholder_extras(recipe: &ResolvedRecipe) -> Map<String, Value> {
    use super::spec::{ClusterSecretValue, DerivedKind, HostKeys};
    let secrets: Map<String, Value> = recipe
        .secrets
        .iter()
        .map(|s| {
            let v = match s.value {
                ClusterSecretValue::Derived(DerivedKind::SshEd25519) => json!({
                    "private": format!("<secret {} private key>\n", s.name),
                    "public": format!("ssh-ed25519 <secret {} public key>", s.name),
                }),
                _ => Value::String(format!("<secret {}>", s.name)),
            };
            (s.name.clone(), v)
        })
        .collect();
    let host_keys: Map<String, Value> = recipe
        .nodes
        .iter()
        .filter(|n| n.ssh.host_keys == HostKeys::Generate)
        .map(|n| {
            (
                n.name.clone(),
                Value::String(format!("ssh-ed25519 <host key of {}>", n.name)),
            )
        })
        .collect();
    let mut m = Map::new();
    m.insert("secrets".into(), Value::Object(secrets));
    m.insert("host_keys".into(), Value::Object(host_keys));
    m
}

/// A template value made from anything serde can serialize.
#[must_use]
pub fn to_value<T: serde::Serialize>(v: T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(v))
}

/// What every node's templates share: `nodes`, `roles`, `cluster` and the `extras` (`secrets`
/// and `host_keys`, real or [`placeholder_extras`]), converted once per recipe. A node's context
/// ([`Shared::context`]) then costs only its own variables: building the cluster-wide part per
/// node made a 4096-node recipe quadratic (minutes to validate).
#[derive(Debug, Clone, Default)]
pub struct Shared {
    values: Vec<(String, minijinja::Value)>,
}

impl Shared {
    /// The shared variables of `recipe`'s templates.
    #[must_use]
    pub fn new(recipe: &ResolvedRecipe, extras: &Map<String, Value>) -> Self {
        let mut values: Vec<(String, minijinja::Value)> = extras
            .iter()
            .map(|(k, v)| (k.clone(), to_value(v)))
            .collect();
        let nodes: Vec<Value> = recipe.nodes.iter().map(node_value).collect();
        let mut roles: Map<String, Value> = Map::new();
        for n in &recipe.nodes {
            if let Value::Array(list) = roles
                .entry(n.role.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                list.push(node_value(n));
            }
        }
        values.push(("nodes".into(), to_value(&nodes)));
        values.push(("roles".into(), to_value(&roles)));
        values.push((
            "cluster".into(),
            to_value(json!({
                "name": recipe.cluster.name,
                "domain": recipe.cluster.domain,
                "description": recipe.cluster.description,
            })),
        ));
        Self { values }
    }

    /// The variables `node`'s templates see (see the module docs): its `vars`, then the shared
    /// ones and `node` (the reserved names win; recipes cannot define them as vars anyway).
    #[must_use]
    pub fn context(&self, node: &NodeSpec) -> minijinja::Value {
        let mut ctx: std::collections::BTreeMap<String, minijinja::Value> = node
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), to_value(v)))
            .collect();
        for (k, v) in &self.values {
            ctx.insert(k.clone(), v.clone());
        }
        ctx.insert("node".into(), to_value(node_value(node)));
        minijinja::Value::from(ctx)
    }
}

/// The variables `node`'s templates see, for one node (tests and single renders; for many
/// nodes build one [`Shared`]).
#[must_use]
pub fn context(
    recipe: &ResolvedRecipe,
    node: &NodeSpec,
    extras: &Map<String, Value>,
) -> minijinja::Value {
    Shared::new(recipe, extras).context(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_and_strict_rendering() {
        check_syntax("a.j2", "x {{ y }}\n").unwrap();
        let e = check_syntax("a.j2", "line1\n{% if x %}\nno end\n").unwrap_err();
        assert!(e.starts_with("a.j2:"), "{e}");
        assert!(e.contains("syntax error"), "{e}");
        let ctx = to_value(json!({"name": "n1"}));
        assert_eq!(render("a.j2", "hi {{ name }}\n", &ctx).unwrap(), "hi n1\n");
        let e = render("a.j2", "a\n{{ missing }}\n", &ctx).unwrap_err();
        assert!(e.starts_with("a.j2:2: undefined value"), "{e}");
    }

    #[test]
    fn issue15_runaway_templates_run_out_of_fuel() {
        let ctx = to_value(json!({}));
        let cases = [
            (
                "doubling 40 times",
                "{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x|length }}",
            ),
            (
                "10^5 x 10^5 loop",
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            ),
            ("huge repeat", "{{ 'x' * 1000000000 }}"),
            (
                "recursive macro output",
                "{% macro m(n) %}{{ 'y' * 1000 }}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
            ),
        ];
        for (name, src) in cases {
            let t = std::time::Instant::now();
            let e = render("big.j2", src, &ctx).unwrap_err();
            assert!(
                e.contains("more work than piimage allows") || e.contains("recursion"),
                "{name}: {e}"
            );
            assert!(e.starts_with("big.j2:"), "{name}: {e}");
            assert!(t.elapsed().as_secs() < 10, "{name}: {:?}", t.elapsed());
        }
        // An ordinary loop over many nodes is far inside the budget.
        let nodes: Vec<_> = (0..4096)
            .map(|i| json!({"name": format!("n{i}"), "address": "10.0.0.1"}))
            .collect();
        let out = render(
            "hosts.j2",
            "{% for n in nodes %}{{ n.address }} {{ n.name }}\n{% endfor %}",
            &to_value(json!({ "nodes": nodes })),
        )
        .unwrap();
        assert_eq!(out.lines().count(), 4096);
    }
}
