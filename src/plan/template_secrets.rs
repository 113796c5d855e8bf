//! The real values of the template variables `secrets` and `host_keys`
//! ([`crate::recipe::template`]), computed once per build from the seed and the recipe's
//! `secrets:` sources, and the list of secret texts `plan` hides from its diffs.

use serde_json::{Map, Value, json};

use crate::recipe::{ClusterSecretValue, DerivedKind, HostKeys, ResolvedRecipe};
use crate::secrets::cluster::{ssh_ed25519, token};
use crate::secrets::hostkey::ed25519;
use crate::secrets::rng::derived_rng;

use super::PlanError;

/// `secrets` and `host_keys` for every node's templates.
#[derive(Clone, Default)]
pub struct TemplateSecrets {
    /// The extra template variables (`secrets`, `host_keys`).
    pub vars: Map<String, Value>,
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
            let err = |e: String| PlanError::Conflict(format!("secrets.{}: {e}", s.name));
            let v = match &s.value {
                ClusterSecretValue::Derived(DerivedKind::Token) => {
                    let t = token(seed, &s.name);
                    values.push((s.name.clone(), t.clone()));
                    Value::String(t)
                }
                ClusterSecretValue::Derived(DerivedKind::SshEd25519) => {
                    let k = ssh_ed25519(seed, &s.name, &recipe.cluster.name)
                        .map_err(|e| err(e.to_string()))?;
                    values.push((s.name.clone(), k.private_openssh.clone()));
                    json!({ "private": k.private_openssh, "public": k.public_openssh })
                }
                ClusterSecretValue::Source(source) => {
                    let t = source.read().map_err(err)?;
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
            // The same derivation as the node's own plan (`plan::node`), so the key a template
            // names is the key the node gets.
            let k = ed25519(
                &n.hostname,
                &mut derived_rng(seed, "ssh-host-ed25519", &n.name),
            )
            .map_err(|e| PlanError::Conflict(format!("node {}: {e}", n.name)))?;
            host_keys.insert(n.name.clone(), Value::String(k.public_key));
        }
        let mut vars = Map::new();
        vars.insert("secrets".into(), Value::Object(secrets));
        vars.insert("host_keys".into(), Value::Object(host_keys));
        Ok(Self { vars, values })
    }
}
