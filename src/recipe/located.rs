//! Values that remember where they were written: file, line, column and field path.
//!
//! [`Located<T>`] deserializes through serde-saphyr's [`Spanned`], which knows the line and
//! column; the file comes from the parse in progress ([`with_file`]), and the field path
//! (`users[0].ssh_authorized_keys[1]`) is filled in after parsing by
//! [`Stamp`](super::merge::Stamp), because serde does not expose the path while it works.
//! Every semantic check of the recipe can then name `file:line:column: field`, even after
//! `extends` merged values from several files.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Where a value was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The recipe file, as it was named (relative paths stay relative).
    pub file: Arc<Path>,
    /// 1-based line; 0 when unknown.
    pub line: u64,
    /// 1-based column (characters); 0 when unknown.
    pub column: u64,
    /// Field path in that file, e.g. `nodes[2].users[0].name`; empty for the whole file.
    pub field: String,
}

impl Origin {
    /// The start of `file`, for problems about the file as a whole.
    pub fn file_start(file: Arc<Path>) -> Self {
        Self {
            file,
            line: 1,
            column: 1,
            field: String::new(),
        }
    }

    /// The same place, naming a sub-field (`.name`) or element (`[3]`).
    #[must_use]
    pub fn child(&self, suffix: &str) -> Self {
        let mut o = self.clone();
        if suffix.starts_with('[') || o.field.is_empty() {
            o.field.push_str(suffix.trim_start_matches('.'));
        } else {
            o.field.push('.');
            o.field.push_str(suffix.trim_start_matches('.'));
        }
        o
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        Ok(())
    }
}

thread_local! {
    static CURRENT_FILE: RefCell<Option<Arc<Path>>> = const { RefCell::new(None) };
}

/// Runs `parse` with `file` as the file every [`Located`] it produces is attributed to.
pub(crate) fn with_file<R>(file: Arc<Path>, parse: impl FnOnce() -> R) -> R {
    struct Reset(Option<Arc<Path>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT_FILE.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT_FILE.with(|c| c.borrow_mut().replace(file));
    let _reset = Reset(previous);
    parse()
}

fn current_file() -> Arc<Path> {
    CURRENT_FILE.with(|c| {
        c.borrow()
            .clone()
            .unwrap_or_else(|| Arc::from(Path::new("<input>")))
    })
}

/// A value and where it was written.
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub at: Origin,
}

impl<T> Located<T> {
    /// Wraps `value` written at `at`.
    pub fn new(value: T, at: Origin) -> Self {
        Self { value, at }
    }
}

impl<T> Deref for Located<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<T>::deserialize(deserializer)?;
        let loc = spanned.referenced;
        Ok(Self {
            value: spanned.value,
            at: Origin {
                file: current_file(),
                line: loc.line(),
                column: loc.column(),
                field: String::new(),
            },
        })
    }
}

/// A plain string, or the structure `T` written as a mapping (or a sequence, for list types):
/// `- ~/.ssh/id.pub` next to `- { file: keys/bob.pub }`.
#[derive(Debug, Clone)]
pub enum StrOr<T> {
    /// The string form.
    Str(String),
    /// The structured form.
    Full(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for StrOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = StrOr<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a mapping")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOr::Str(v.to_owned()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(StrOr::Str(v))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(StrOr::Full)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(StrOr::Full)
            }
        }

        deserializer.deserialize_any(V(PhantomData))
    }
}

/// In the JSON Schema a located value is the value itself: the origin is not written.
impl<T: schemars::JsonSchema> schemars::JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// In the JSON Schema: a string, or `T`'s own form.
impl<T: schemars::JsonSchema> schemars::JsonSchema for StrOr<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("StrOr_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let full = generator.subschema_for::<T>();
        schemars::json_schema!({ "anyOf": [{ "type": "string" }, full] })
    }
}
