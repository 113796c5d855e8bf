//! The real values of the template variables `secrets` and `host_keys`
//! ([`crate::recipe::template`]), computed once per build from the seed and the recipe's
//! `secrets:` sources, and the list of secret texts `plan` hides from its diffs.

use serde_json::{Map, Value, json};

use crate::recipe::{ClusterSecretValue, DerivedKind, HostKeys, ResolvedRecipe};
use crate::secrets::cluster::{ssh_ed25519, token};
use crate::secrets::derive;

use super::{NodeConflict, PlanError};

/// `secrets` and `host_keys` for every node's templates.
#[derive(Clone, Default)]
pub struct TemplateSecrets {
    /// The extra template variables (`secrets`, `host_keys`).
    pub vars: Map<String, Value>,
    /// Every template variable the nodes share, these included, built once.
    pub shared: crate::recipe::template::Shared,
    /// `(name, text)` of every secret value, for [`super::redact::redact_known`].
    pub values: Vec<(String, String)>,
}

impl std::fmt::Debug for TemplateSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.values.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("TemplateSecrets")
            .field("secrets", &names)
            .finish_non_exhaustive()
    }
}

impl TemplateSecrets {
    /// Derives (or reads) every `secrets:` entry and every generated host public key.
    ///
    /// # Errors
    /// A `file:`/`env:` secret cannot be read, or a key cannot be encoded.
    pub fn new(recipe: &ResolvedRecipe, seed: &[u8]) -> Result<Self, PlanError> {
        let mut secrets = Map::new();
        let mut values = Vec::new();
        for s in &recipe.secrets {
            let v = match &s.value {
                ClusterSecretValue::Derived(DerivedKind::Token) => {
                    let t = token(seed, &s.name);
                    values.push((s.name.clone(), t.clone()));
                    Value::String(t)
                }
                ClusterSecretValue::Derived(DerivedKind::SshEd25519) => {
                    let k = ssh_ed25519(seed, &s.name, &recipe.cluster.name).map_err(|source| {
                        PlanError::SecretKey {
                            name: s.name.clone(),
                            source,
                        }
                    })?;
                    values.push((s.name.clone(), k.private_openssh.clone()));
                    json!({ "private": k.private_openssh, "public": k.public_openssh })
                }
                ClusterSecretValue::Source(source) => {
                    let t = source.read().map_err(|reason| PlanError::SecretSource {
                        name: s.name.clone(),
                        reason,
                    })?;
                    values.push((s.name.clone(), t.clone()));
                    Value::String(t)
                }
            };
            secrets.insert(s.name.clone(), v);
        }
        let mut host_keys = Map::new();
        for n in recipe
            .nodes
            .iter()
            .filter(|n| n.ssh.host_keys == HostKeys::Generate)
        {
            // The one derivation the node's own plan uses too, so the key a template names is
            // the key the node gets.
            let k = derive::host_key(seed, &n.name, &n.hostname)
                .map_err(|e| PlanError::node(&n.name, NodeConflict::HostKey(e)))?;
            host_keys.insert(n.name.clone(), Value::String(k.public_key));
        }
        let mut vars = Map::new();
        vars.insert("secrets".into(), Value::Object(secrets));
        vars.insert("host_keys".into(), Value::Object(host_keys));
        let shared = crate::recipe::template::Shared::new(recipe, &vars);
        Ok(Self {
            vars,
            shared,
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::LoadOptions;
    use crate::recipe::template::{context, placeholder_extras, render};

    #[test]
    fn issue16_templates_see_the_seeds_secrets_and_host_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.img"), b"x").unwrap();
        std::fs::write(dir.path().join("tok"), "filed\n").unwrap();
        let path = dir.path().join("r.yaml");
        std::fs::write(
            &path,
            "cluster: { name: lab }\nbase: { path: base.img }\nseed: s3cret\n\
             ssh: { host_keys: generate }\nnodes: [{ name: n1 }, { name: n2 }]\n\
             secrets:\n  t: { derive: token }\n  k: { derive: ssh-ed25519 }\n  f: { file: tok }\n",
        )
        .unwrap();
        let r = crate::recipe::load(&path, &LoadOptions::default()).unwrap();
        let extras = TemplateSecrets::new(&r, b"s3cret").unwrap();
        let src = "{{ secrets.t }} {{ secrets.f }}\n{{ secrets.k.public }}\n{{ host_keys.n2 }}\n";
        let out = render("x.j2", src, &context(&r, &r.nodes[0], &extras.vars)).unwrap();
        let key = ssh_ed25519(b"s3cret", "k", "lab").unwrap();
        let n2 = derive::host_key(b"s3cret", "n2", "n2").unwrap();
        assert_eq!(
            out,
            format!(
                "{} filed\n{}\n{}\n",
                token(b"s3cret", "t"),
                key.public_openssh,
                n2.public_key
            )
        );
        // The same on the other node; the values plan hides; no value in Debug.
        let other = render("x.j2", src, &context(&r, &r.nodes[1], &extras.vars)).unwrap();
        assert_eq!(out, other);
        let names: Vec<&str> = extras.values.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["f", "k", "t"]);
        assert!(!format!("{extras:?}").contains(&token(b"s3cret", "t")));
        // validate's stand-ins render the same template without any value.
        let shown = render(
            "x.j2",
            src,
            &context(&r, &r.nodes[0], &placeholder_extras(&r)),
        )
        .unwrap();
        assert_eq!(
            shown,
            "<secret t> <secret f>\nssh-ed25519 <secret k public key>\nssh-ed25519 <host key of n2>\n"
        );
    }
}
