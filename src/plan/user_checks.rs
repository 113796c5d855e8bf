//! Checks of the recipe's users against the accounts, groups and shells of the base image.
//! Run with the other image checks ([`super::image_checks`]) by `plan`, `build` and
//! `validate --base`, before anything is written, each problem naming the recipe's
//! `file:line:column: field`.
//!
//! - A name that is already an account of the image is refused unless that account goes
//!   (`default_user: remove`) or is the renamed default user (`default_user: { rename: NAME }`
//!   with a `users` entry of that name completing it).
//! - An explicit `uid` that an account the image keeps already has is refused: two accounts
//!   with one uid share every file, and `userdel` of one breaks the other.
//! - Every group exists in the image's `/etc/group`.
//! - The shell exists in the image (a regular file after following links inside it, or a file
//!   the node's overlays add): an account whose shell is missing cannot log in.

use crate::recipe::{DefaultUser, NodeSpec, Problem, RecipeError};

use super::profile::Profile;

/// Checks every user of `nodes` against `profile`; `is_file(path)` says whether `path` is a
/// regular file in the image (following its links).
///
/// # Errors
/// A [`RecipeError`] with every problem found.
pub fn check_users<'a>(
    nodes: impl IntoIterator<Item = &'a NodeSpec>,
    profile: &Profile,
    is_file: &dyn Fn(&str) -> bool,
) -> Result<(), RecipeError> {
    let mut problems: Vec<Problem> = Vec::new();
    let mut push = |p: Problem| {
        if !problems.contains(&p) {
            problems.push(p);
        }
    };
    for node in nodes {
        let default = profile.users.first();
        // The accounts that stay in the image, as (name, uid): the default user under its
        // new name when renamed, not at all when removed.
        let mut kept: Vec<(&str, u32)> = Vec::new();
        for (name, uid) in &profile.uids {
            let is_default = default.is_some_and(|d| &d.name == name);
            match &node.default_user {
                DefaultUser::Remove if is_default => {}
                DefaultUser::Rename(new) if is_default => kept.push((new.as_str(), *uid)),
                _ => kept.push((name.as_str(), *uid)),
            }
        }
        let renamed = match &node.default_user {
            DefaultUser::Rename(new) => Some(new.as_str()),
            _ => None,
        };
        let overlay_files = super::image_checks::overlay_root_files(node);
        for u in &node.users {
            let is_renamed = renamed == Some(u.name.as_str());
            if !is_renamed && let Some((_, uid)) = kept.iter().find(|(n, _)| *n == u.name) {
                let hint = match default {
                    Some(d) if d.name == u.name => "it is the image's default user; to \
                        replace it write `default_user: remove`, to keep its files and uid \
                        under another name `default_user: { rename: NEWNAME }`"
                        .to_owned(),
                    _ => "choose another name".to_owned(),
                };
                push(Problem::at(
                    &u.at.name,
                    format!(
                        "user {:?} already exists in the image (uid {uid}); {hint}",
                        u.name
                    ),
                ));
            }
            if let (Some(uid), Some(at)) = (u.uid, &u.at.uid)
                && let Some((owner, _)) = kept
                    .iter()
                    .find(|(n, id)| *id == uid && *n != u.name.as_str())
            {
                let also = match default {
                    Some(d) if d.uid == uid && matches!(node.default_user, DefaultUser::Keep) => {
                        format!(
                            ", or let `default_user: remove` free it (it is the image's \
                             default user, {:?})",
                            d.name
                        )
                    }
                    _ => String::new(),
                };
                push(Problem::at(
                    at,
                    format!(
                        "uid {uid} is already {owner:?}'s in the image: two accounts with one \
                         uid own each other's files; leave `uid` out to take the first free \
                         uid{also}"
                    ),
                ));
            }
            for (g, at) in u.groups.iter().zip(&u.at.groups) {
                if !profile.groups.contains(g) {
                    push(Problem::at(
                        at,
                        format!(
                            "group {g:?} does not exist in the image's /etc/group{}",
                            suggest(g, profile.groups.iter().map(String::as_str))
                        ),
                    ));
                }
            }
            if let Some(at) = &u.at.shell
                && !overlay_files.contains(&u.shell)
                && !is_file(&u.shell)
            {
                push(Problem::at(
                    at,
                    format!(
                        "shell {:?} is not in the image (no regular file there): the account \
                         could not log in{}",
                        u.shell,
                        suggest(
                            &u.shell,
                            image_shells(profile, is_file).iter().map(String::as_str)
                        )
                    ),
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RecipeError { problems })
    }
}

/// The shells the image lists in `/etc/shells` that exist in it.
fn image_shells(profile: &Profile, is_file: &dyn Fn(&str) -> bool) -> Vec<String> {
    profile
        .shells
        .iter()
        .filter(|s| is_file(s))
        .cloned()
        .collect()
}

fn suggest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    super::image_checks::offer(wanted, candidates)
}
