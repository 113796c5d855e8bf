//! Reading recipe files: YAML parsing with line-accurate errors, and the `extends` chain.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::{RenderOptions, SnippetMode};

use super::error::{Problem, RecipeError};
use super::located::{Located, with_file};
use super::merge::{Merge, Stamp};
use super::raw::RawRecipe;

/// How many files an `extends` chain may have.
pub const MAX_EXTENDS_DEPTH: usize = 16;

/// A recipe with its `extends` chain merged in.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The merged raw recipe.
    pub recipe: RawRecipe,
    /// Every file read, the most basic first.
    pub chain: Vec<PathBuf>,
}

/// Reads `path` and the recipes it extends, and merges them (parent first, child on top).
pub(crate) fn load_chain(path: &Path) -> Result<Loaded, RecipeError> {
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new(); // (as named, canonical)
    let mut recipes: Vec<RawRecipe> = Vec::new();
    let mut next: Option<(PathBuf, Option<Located<String>>)> = Some((path.to_owned(), None));
    while let Some((file, via)) = next.take() {
        let canonical = match file.canonicalize() {
            Ok(c) => c,
            Err(e) => {
                return Err(RecipeError::one(match &via {
                    Some(ext) => Problem::at(
                        &ext.at,
                        format!("cannot read {}: {}", file.display(), io_reason(&e)),
                    ),
                    None => Problem::file(&file, format!("cannot read: {}", io_reason(&e))),
                }));
            }
        };
        if let Some(ext) = &via {
            if let Some(pos) = files.iter().position(|(_, c)| *c == canonical) {
                let cycle: Vec<String> = files[pos..]
                    .iter()
                    .map(|(f, _)| f.display().to_string())
                    .chain(std::iter::once(file.display().to_string()))
                    .collect();
                return Err(RecipeError::one(Problem::at(
                    &ext.at,
                    format!("extends cycle: {}", cycle.join(" -> ")),
                )));
            }
            if files.len() >= MAX_EXTENDS_DEPTH {
                return Err(RecipeError::one(Problem::at(
                    &ext.at,
                    format!("more than {MAX_EXTENDS_DEPTH} files in the extends chain"),
                )));
            }
        }
        let text = crate::io::bounded::read_to_string(&file, crate::io::bounded::RECIPE_LIMIT)
            .map_err(|e| {
                RecipeError::one(Problem::file(
                    &file,
                    format!("cannot read: {}", io_reason(&e)),
                ))
            })?;
        if let Some(ext) = &via
            && !looks_like_a_mapping(&text)
        {
            // Most likely a secret named by mistake: say so without quoting a byte of it.
            return Err(RecipeError::one(Problem::at(
                &ext.at,
                format!(
                    "{} is not a recipe: its top level is not a YAML mapping (its content is not \
                     shown, in case it is a secret)",
                    file.display()
                ),
            )));
        }
        let recipe = parse(&text, &file)?;
        if let Some(ext) = &recipe.extends {
            let parent_dir = file.parent().unwrap_or(Path::new(""));
            next = Some((parent_dir.join(&ext.value), Some(ext.clone())));
        }
        files.push((file, canonical));
        recipes.push(recipe);
    }
    let mut merged = recipes.pop().unwrap_or_default();
    while let Some(child) = recipes.pop() {
        merged.merge(child);
    }
    Ok(Loaded {
        recipe: merged,
        chain: files.into_iter().rev().map(|(f, _)| f).collect(),
    })
}

/// `No such file or directory` without the `(os error 2)`.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// True when the first line of `text` that is not blank, a comment or a document marker starts
/// a block mapping (`key:`) or a flow mapping (`{`): what any recipe looks like.
fn looks_like_a_mapping(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && *l != "---" && !l.starts_with('%'))
        .is_some_and(|l| {
            l.starts_with('{')
                || l.split_once(':').is_some_and(|(k, rest)| {
                    !k.is_empty() && !k.contains(' ') && (rest.is_empty() || rest.starts_with(' '))
                })
        })
}

/// Parses one recipe file's text; `file` names it in errors and origins.
pub(crate) fn parse(text: &str, file: &Path) -> Result<RawRecipe, RecipeError> {
    let file: Arc<Path> = Arc::from(file);
    if text.trim().is_empty() {
        return Err(RecipeError::one(Problem::file(
            file.to_path_buf(),
            "empty recipe (see recipes/README.md)",
        )));
    }
    let error_path = RefCell::new(String::new());
    let parsed = with_file(file.clone(), || {
        serde_saphyr::with_deserializer_from_str(text, |de| {
            serde_path_to_error::deserialize::<_, RawRecipe>(de).map_err(|e| {
                *error_path.borrow_mut() = e.path().to_string();
                e.into_inner()
            })
        })
    });
    match parsed {
        Ok(mut recipe) => {
            recipe.stamp("");
            Ok(recipe)
        }
        Err(e) => Err(RecipeError::one(syntax_problem(
            &e,
            &file,
            &clean_path(&error_path.into_inner()),
        ))),
    }
}

fn syntax_problem(e: &serde_saphyr::Error, file: &Path, field: &str) -> Problem {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let mut plain = RenderOptions::default();
    plain.snippets = SnippetMode::Off;
    let mut message = e.render_with_options(plain);
    let suffix = format!(" at line {line}, column {column}");
    if let Some(stripped) = message.strip_suffix(&suffix) {
        message = stripped.to_owned();
    }
    if matches!(
        e.without_snippet(),
        serde_saphyr::Error::MultipleDocuments { .. }
    ) {
        message = "a recipe is one YAML document: remove the `---` (use `extends` to combine \
                   files)"
            .to_owned();
    }
    let name = file.display().to_string();
    let mut with_snippet = RenderOptions::default();
    with_snippet.source_name = Some(&name);
    let rendered = e.render_with_options(with_snippet);
    let snippet = rendered
        .split_once('\n')
        .map(|(_, rest)| tidy(rest.trim_end()))
        .filter(|s| !s.is_empty());
    Problem {
        file: file.to_owned(),
        line,
        column,
        field: field.to_owned(),
        message: tidy(&message),
        snippet,
    }
}

/// serde-saphyr's messages without the hints meant for programmers.
fn tidy(message: &str) -> String {
    message
        .replace(", set DuplicateKeyPolicy in Options if acceptable", "")
        .replace(
            "multiple YAML documents detected; use from_str_multiple or \
             from_str_multiple_with_options",
            "a second YAML document",
        )
}

/// serde_path_to_error's path without the `value` level [`Located`] adds and without `?`.
fn clean_path(raw: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for seg in raw.split('.') {
        if seg == "value" || seg == "?" || seg.is_empty() {
            continue;
        }
        if let Some(index) = seg.strip_prefix("value")
            && index.starts_with('[')
        {
            match out.last_mut() {
                Some(last) => last.push_str(index),
                None => out.push(index.to_owned()),
            }
            continue;
        }
        out.push(seg.to_owned());
    }
    out.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_the_located_level() {
        assert_eq!(
            clean_path("nodes.value[0].value.users.value[1].value.name.value"),
            "nodes[0].users[1].name"
        );
        assert_eq!(clean_path("users[0].shel"), "users[0].shel");
        assert_eq!(clean_path("users[0].?"), "users[0]");
        assert_eq!(clean_path(""), "");
    }

    #[test]
    fn syntax_errors_name_file_line_and_field() {
        let err = parse(
            "cluster:\n  name: lab\nusers:\n  - name: a\n    shel: /bin/sh\n",
            Path::new("r.yaml"),
        )
        .unwrap_err();
        let p = &err.problems[0];
        assert_eq!((p.line, p.column), (5, 5), "{p}");
        assert_eq!(p.field, "users[0].shel", "{p}");
        assert!(p.message.starts_with("unknown field `shel`"), "{p}");
        assert!(
            p.snippet.as_deref().unwrap().contains("--> r.yaml:5:5"),
            "{p}"
        );
        assert!(
            p.to_string()
                .starts_with("r.yaml:5:5: users[0].shel: unknown field"),
            "{p}"
        );
    }

    #[test]
    fn located_values_know_file_line_and_field() {
        let r = parse(
            "users:\n  - name: alice\n    uid: 1001\nnodes:\n  - name: n1\n",
            Path::new("x.yaml"),
        )
        .unwrap();
        let users = r.users.unwrap();
        let name = &users.value[0].value.name;
        assert_eq!(name.value, "alice");
        assert_eq!(name.at.to_string(), "x.yaml:2:11: users[0].name");
        let nodes = r.nodes.unwrap();
        let n = nodes.value[0].value.name.as_ref().unwrap();
        assert_eq!(n.at.to_string(), "x.yaml:5:11: nodes[0].name");
    }
}
