//! Recipe problems: each names the file, line:column and field it is about.

use std::fmt;
use std::path::PathBuf;

use super::located::Origin;

/// One thing wrong with a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The recipe file (or the file a recipe refers to, for its own line numbers).
    pub file: PathBuf,
    /// 1-based line; 0 when the problem is about the file as a whole.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// Field path (`users[0].ssh_authorized_keys[1]`); empty for the file as a whole.
    pub field: String,
    /// What is wrong and, when useful, what to write instead.
    pub message: String,
    /// For YAML syntax and type errors: the lines around the error, with a caret.
    pub snippet: Option<String>,
}

impl Problem {
    /// A problem at `at`.
    pub fn at(at: &Origin, message: impl Into<String>) -> Self {
        Self {
            file: at.file.to_path_buf(),
            line: at.line,
            column: at.column,
            field: at.field.clone(),
            message: message.into(),
            snippet: None,
        }
    }

    /// A problem about a whole file.
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: 0,
            column: 0,
            field: String::new(),
            message: message.into(),
            snippet: None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

/// A recipe that cannot be used, with every problem found (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RecipeError {
    /// The problems, in file order where possible.
    pub problems: Vec<Problem>,
}

impl RecipeError {
    /// An error with one problem.
    #[must_use]
    pub fn one(problem: Problem) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

impl fmt::Display for RecipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems in the recipe:", many.len())?;
                for p in many {
                    write!(f, "\n{p}")?;
                }
                Ok(())
            }
        }
    }
}

/// Collects problems while resolving, without duplicates (a setting shared by eight nodes is
/// reported once).
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    /// Records a problem at `at`.
    pub fn add(&mut self, at: &Origin, message: impl Into<String>) {
        self.push(Problem::at(at, message));
    }

    /// Records `problem` unless an identical one is already there.
    pub fn push(&mut self, problem: Problem) {
        if !self.list.contains(&problem) {
            self.list.push(problem);
        }
    }

    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Ok if empty, else the error.
    pub fn finish<T>(self, value: T) -> Result<T, RecipeError> {
        if self.list.is_empty() {
            Ok(value)
        } else {
            Err(RecipeError {
                problems: self.list,
            })
        }
    }
}
