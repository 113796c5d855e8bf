//! `secrets:`: named cluster-wide secrets for templates.
//!
//! Each entry is one value every node's templates see as `secrets.NAME` (the same on every
//! node): `{ derive: token }` or `{ derive: ssh-ed25519 }`, derived from the recipe's `seed`
//! (the rule of [`crate::secrets::cluster`]), or `{ file: PATH }` / `{ env: VAR }`, read at
//! build time like a password. A derived secret needs a `seed`: without one every build would
//! draw a new value, and nodes built by separate builds (another role recipe, `--node`,
//! `--shard`) would not agree on it.

use std::collections::BTreeMap;

use super::ctx::Ctx;
use super::located::{Located, Origin};
use super::raw::RawClusterSecret;
use super::spec::{ClusterSecret, ClusterSecretValue};
use super::syntax;

/// Resolves `secrets:`; `seeded` says whether the recipe has a `seed`.
pub(crate) fn section(
    ctx: &mut Ctx,
    raw: Option<&Located<BTreeMap<String, Located<RawClusterSecret>>>>,
    seeded: bool,
) -> Vec<ClusterSecret> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, entry) in &raw.value {
        let at: &Origin = &entry.at;
        if ctx.check(at, syntax::var_name(name)).is_none() {
            continue;
        }
        let RawClusterSecret { derive, file, env } = &entry.value;
        let value = match (derive, file.is_some() || env.is_some()) {
            (Some(_), true) => {
                ctx.problem(
                    at,
                    "give either `derive: KIND` or a source (`file:` / `env:`), not both",
                );
                continue;
            }
            (Some(kind), false) => {
                if !seeded {
                    ctx.problem(
                        &kind.at,
                        format!(
                            "secret {name:?} is derived from the seed, and the recipe has no \
                             `seed`: set one (`seed: {{ env: VARIABLE }}` or `{{ file: PATH }}`) so \
                             every build gives every node the same value, or read the secret \
                             from `file:` / `env:` instead"
                        ),
                    );
                    continue;
                }
                ClusterSecretValue::Derived(kind.value)
            }
            (None, _) => {
                let Some(source) = ctx.file_or_env(at, file.as_ref(), env.as_ref()) else {
                    continue;
                };
                ctx.check_secret(at, &source);
                ClusterSecretValue::Source(source)
            }
        };
        out.push(ClusterSecret {
            name: name.clone(),
            value,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::recipe::{ClusterSecretValue, DerivedKind, LoadOptions, SecretSource};

    fn load(dir: &Path, text: &str) -> Result<crate::recipe::ResolvedRecipe, String> {
        std::fs::write(dir.join("base.img"), b"x").unwrap();
        let path = dir.join("r.yaml");
        std::fs::write(
            &path,
            format!("cluster: {{ name: lab }}\nbase: {{ path: base.img }}\nnodes: [{{ name: n1 }}]\n{text}"),
        )
        .unwrap();
        crate::recipe::load(&path, &LoadOptions::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn issue16_secrets_resolve_and_mistakes_name_their_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "from-a-file\n").unwrap();
        let r = load(
            dir.path(),
            "seed: s3cret\nsecrets:\n  k3s_token: { derive: token }\n  key: { derive: ssh-ed25519 }\n  other: { file: tok }\n",
        )
        .unwrap();
        let got: Vec<(&str, &ClusterSecretValue)> = r
            .secrets
            .iter()
            .map(|s| (s.name.as_str(), &s.value))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "k3s_token",
                    &ClusterSecretValue::Derived(DerivedKind::Token)
                ),
                ("key", &ClusterSecretValue::Derived(DerivedKind::SshEd25519)),
                (
                    "other",
                    &ClusterSecretValue::Source(SecretSource::File(dir.path().join("tok")))
                ),
            ]
        );
        // (case, recipe text, expected line:column, expected text)
        let cases = [
            (
                "derived without a seed",
                "secrets:\n  t: { derive: token }\n",
                ":5:16: secrets.t.derive:",
                "the recipe has no `seed`",
            ),
            (
                "derive and a source",
                "seed: s\nsecrets:\n  t: { derive: token, env: T }\n",
                ":6:6: secrets.t:",
                "not both",
            ),
            (
                "unknown kind",
                "seed: s\nsecrets:\n  t: { derive: rsa }\n",
                ":6:",
                "unknown variant",
            ),
            (
                "bad name",
                "seed: s\nsecrets:\n  my-token: { derive: token }\n",
                ":6:",
                "not a valid variable name",
            ),
            (
                "missing file",
                "secrets:\n  t: { file: nowhere }\n",
                ":5:6: secrets.t:",
                "nowhere",
            ),
            (
                "empty entry",
                "secrets:\n  t: {}\n",
                ":5:6: secrets.t:",
                "give `file: PATH`",
            ),
            (
                "a var named secrets",
                "vars: { secrets: 1 }\n",
                "vars.secrets",
                "reserved",
            ),
        ];
        for (name, text, at, want) in cases {
            let e = load(dir.path(), text).unwrap_err();
            assert!(e.contains(at) && e.contains(want), "{name}: {e}");
        }
    }
}
