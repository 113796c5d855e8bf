//! `users` and `default_user`.

use std::collections::HashMap;

use crate::secrets::password::looks_like_hash;

use super::ctx::{Ctx, resolve_path};
use super::keys;
use super::located::{Located, StrOr};
use super::raw::{RawKeyFile, RawPassword, RawRename, RawUser};
use super::spec::{DefaultUser, PasswordScheme, PasswordSpec, Sudo, UserOrigins, UserSpec};
use super::syntax;

/// Lowest uid a recipe user may have (Debian's first regular uid).
pub const MIN_UID: u32 = 1000;
/// Highest (Debian reserves 60000 and up).
pub const MAX_UID: u32 = 59_999;

/// The uid the image's default user has.
pub const DEFAULT_USER_UID: u32 = 1000;

/// `default_user`: `keep`, `remove` or `{ rename: NAME }`.
pub(crate) fn default_user(ctx: &mut Ctx, v: Option<&Located<StrOr<RawRename>>>) -> DefaultUser {
    let Some(v) = v else { return DefaultUser::Keep };
    match &v.value {
        StrOr::Str(s) if s == "keep" => DefaultUser::Keep,
        StrOr::Str(s) if s == "remove" => DefaultUser::Remove,
        StrOr::Str(s) => {
            ctx.problem(
                &v.at,
                format!("{s:?}: write `keep`, `remove` or `{{ rename: NEWNAME }}`"),
            );
            DefaultUser::Keep
        }
        StrOr::Full(RawRename { rename }) => {
            if ctx
                .check(&rename.at, syntax::login_name(&rename.value))
                .is_some()
            {
                reserved(ctx, rename);
            }
            DefaultUser::Rename(rename.value.clone())
        }
    }
}

fn reserved(ctx: &mut Ctx, name: &Located<String>) {
    if syntax::RESERVED_USERS.contains(&name.value.as_str()) {
        ctx.problem(
            &name.at,
            format!(
                "{:?} is a system account of the image; choose another name",
                name.value
            ),
        );
    }
}

/// `users`: every entry checked, duplicates refused.
pub(crate) fn users(
    ctx: &mut Ctx,
    list: Option<&Located<Vec<Located<RawUser>>>>,
    default_user: &DefaultUser,
) -> Vec<UserSpec> {
    let Some(list) = list else { return Vec::new() };
    let mut names: HashMap<&str, &Located<String>> = HashMap::new();
    let mut uids: HashMap<u32, &Located<u32>> = HashMap::new();
    let mut out = Vec::new();
    for u in &list.value {
        let u = &u.value;
        if let Some(first) = names.insert(&u.name.value, &u.name) {
            ctx.problem(
                &u.name.at,
                format!("user {:?} is already defined at {}", u.name.value, first.at),
            );
        }
        if let Some(uid) = &u.uid
            && let Some(first) = uids.insert(uid.value, uid)
        {
            ctx.problem(
                &uid.at,
                format!("uid {} is already used at {}", uid.value, first.at),
            );
        }
        if let Some(spec) = user(ctx, u, default_user) {
            out.push(spec);
        }
    }
    out
}

fn user(ctx: &mut Ctx, u: &RawUser, default_user: &DefaultUser) -> Option<UserSpec> {
    let name_ok = ctx
        .check(&u.name.at, syntax::login_name(&u.name.value))
        .is_some();
    if name_ok {
        reserved(ctx, &u.name);
    }
    let mut ok = name_ok;
    if let Some(uid) = &u.uid {
        if !(MIN_UID..=MAX_UID).contains(&uid.value) {
            ctx.problem(
                &uid.at,
                format!(
                    "uid {} is outside the range for people ({MIN_UID} to {MAX_UID}); leave it \
                     out to take the first free uid",
                    uid.value
                ),
            );
            ok = false;
        }
        if let DefaultUser::Rename(new) = default_user
            && *new == u.name.value
            && uid.value != DEFAULT_USER_UID
        {
            ctx.problem(
                &uid.at,
                format!("{new:?} is the renamed default user, which keeps uid {DEFAULT_USER_UID}"),
            );
        }
    }
    let mut groups = Vec::new();
    let mut group_origins = Vec::new();
    for g in u.groups.iter().flat_map(|g| &g.value) {
        if ctx.check(&g.at, syntax::login_name(&g.value)).is_some() && !groups.contains(&g.value) {
            groups.push(g.value.clone());
            group_origins.push(g.at.clone());
        }
    }
    let shell = match &u.shell {
        Some(s) => {
            ok &= ctx.check(&s.at, syntax::image_path(&s.value)).is_some();
            s.value.clone()
        }
        None => "/bin/bash".to_owned(),
    };
    let gecos = match &u.gecos {
        Some(g) if g.value.contains([':', '\n']) => {
            ctx.problem(&g.at, "the GECOS field cannot contain `:` or a line break");
            String::new()
        }
        Some(g) => g.value.clone(),
        None => String::new(),
    };
    let password = u.password.as_ref().and_then(|p| password(ctx, p));
    let locked = u.locked.as_ref().is_some_and(|l| l.value);
    let sudo = u.sudo.as_ref().map_or(Sudo::None, |s| s.value);
    if let Some(s) = u.sudo.as_ref().filter(|s| s.value == Sudo::Password) {
        let usable = match &password {
            Some(PasswordSpec::Hash(h)) => !(h.starts_with('!') || h == "*"),
            Some(PasswordSpec::Plain { .. }) => true,
            None => false,
        };
        if !usable || locked {
            ctx.problem(
                &s.at,
                format!(
                    "`sudo: password` needs a usable password, and {:?} has {}; set `password`, \
                     or use `sudo: nopassword`",
                    u.name.value,
                    if locked { "a locked one" } else { "none" }
                ),
            );
        }
    }
    let mut authorized_keys = Vec::new();
    for k in u.ssh_authorized_keys.iter().flat_map(|k| &k.value) {
        match &k.value {
            StrOr::Str(text) => {
                let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                if lines.is_empty() {
                    ctx.problem(&k.at, "empty key");
                }
                for line in lines {
                    if let Some(key) = ctx.check(&k.at, keys::authorized_key(line)) {
                        authorized_keys.push(key);
                    }
                }
            }
            StrOr::Full(RawKeyFile { file }) => {
                let path = resolve_path(&file.at, &file.value);
                let result = ctx.key_file(&path);
                if let Some(keys) = ctx.check(&file.at, result) {
                    authorized_keys.extend(keys);
                }
            }
        }
    }
    ok.then(|| UserSpec {
        name: u.name.value.clone(),
        uid: u.uid.as_ref().map(|u| u.value),
        groups,
        shell,
        gecos,
        sudo,
        password,
        locked,
        authorized_keys,
        at: UserOrigins {
            name: u.name.at.clone(),
            uid: u.uid.as_ref().map(|v| v.at.clone()),
            shell: u.shell.as_ref().map(|v| v.at.clone()),
            groups: group_origins,
        },
    })
}

fn password(ctx: &mut Ctx, p: &Located<StrOr<RawPassword>>) -> Option<PasswordSpec> {
    let plaintext_refused = "this looks like a plaintext password, and plaintexts are never \
        written in a recipe: give a crypt hash (`{ hash: \"$y$...\" }`, from `mkpasswd` or \
        `openssl passwd -6`), or let piimage hash one read at build time with `{ file: PATH }` \
        or `{ env: VARIABLE }`";
    match &p.value {
        StrOr::Str(s) if looks_like_hash(s) => Some(PasswordSpec::Hash(s.clone())),
        StrOr::Str(_) => {
            ctx.problem(&p.at, plaintext_refused);
            None
        }
        StrOr::Full(RawPassword {
            hash,
            file,
            env,
            method,
        }) => {
            if let Some(h) = hash {
                if file.is_some() || env.is_some() {
                    ctx.problem(&p.at, "give one of `hash`, `file` or `env`");
                    return None;
                }
                if let Some(m) = method {
                    ctx.problem(&m.at, "`method` is for passwords piimage hashes (`file`, `env`); a `hash` is used as it is");
                }
                if !looks_like_hash(&h.value) {
                    ctx.problem(
                        &h.at,
                        "not a crypt(3) hash: expected `$y$...` (yescrypt), `$6$...` (SHA-512), \
                         `$5$...`, or `!`/`*` for no password; a plaintext belongs in a file or \
                         variable (`file:`/`env:`)",
                    );
                    return None;
                }
                return Some(PasswordSpec::Hash(h.value.clone()));
            }
            let source = ctx.file_or_env(&p.at, file.as_ref(), env.as_ref())?;
            ctx.check_secret(&p.at, &source);
            Some(PasswordSpec::Plain {
                source,
                scheme: method
                    .as_ref()
                    .map_or(PasswordScheme::default(), |m| m.value),
            })
        }
    }
}
