//! `extends` and per-role/per-node overrides: how a child value lands on its parent, and how
//! each value learns its field path.
//!
//! The rule, documented in `recipes/README.md`: **mappings merge key by key; scalars and lists
//! from the child replace the parent's**. A few mappings whose keys are alternatives (`base`, a
//! password or secret source, `default_user`) are replaced as a whole, so a child's `path` never
//! sits next to a parent's `url`.
//!
//! [`Merge`] and [`Stamp`] are implemented for the raw types with the [`merge_struct!`] /
//! [`replace_struct!`] macros, which destructure `Self` without `..`: a field added to a raw
//! struct and forgotten here is a compile error.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::located::{Located, StrOr};

/// Lays a child value over `self` (the parent).
pub(crate) trait Merge {
    /// Merges `child` into `self`; the child wins.
    fn merge(&mut self, child: Self);
}

/// Records field paths (`users[0].name`) in every [`Located`] of a freshly parsed tree.
pub(crate) trait Stamp {
    /// Stamps `self`, found at `path`.
    fn stamp(&mut self, path: &str);
}

/// `parent.field`, or `field` at the top (a raw identifier's `r#` is dropped).
pub(crate) fn field_path(parent: &str, field: &str) -> String {
    let field = field.trim_start_matches("r#");
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

macro_rules! leaf {
    ($($t:ty),* $(,)?) => {$(
        impl Merge for $t {
            fn merge(&mut self, child: Self) {
                *self = child;
            }
        }
        impl Stamp for $t {
            fn stamp(&mut self, _path: &str) {}
        }
    )*};
}

leaf!(String, bool, u32, u64, i64, Value);

/// Deep-merges JSON-like data: objects key by key, anything else replaced.
pub(crate) fn merge_value(parent: &mut Value, child: Value) {
    match (parent, child) {
        (Value::Object(p), Value::Object(c)) => merge_map(p, c),
        (p, c) => *p = c,
    }
}

fn merge_map(parent: &mut Map<String, Value>, child: Map<String, Value>) {
    for (k, v) in child {
        match parent.get_mut(&k) {
            Some(existing) => merge_value(existing, v),
            None => {
                parent.insert(k, v);
            }
        }
    }
}

impl Merge for Map<String, Value> {
    fn merge(&mut self, child: Self) {
        merge_map(self, child);
    }
}

impl Stamp for Map<String, Value> {
    fn stamp(&mut self, _path: &str) {}
}

impl<T: Merge> Merge for Located<T> {
    fn merge(&mut self, child: Self) {
        self.value.merge(child.value);
        self.at = child.at;
    }
}

impl<T: Stamp> Stamp for Located<T> {
    fn stamp(&mut self, path: &str) {
        path.clone_into(&mut self.at.field);
        self.value.stamp(path);
    }
}

impl<T: Merge> Merge for Option<T> {
    fn merge(&mut self, child: Self) {
        match (self.as_mut(), child) {
            (_, None) => {}
            (Some(parent), Some(child)) => parent.merge(child),
            (None, child) => *self = child,
        }
    }
}

impl<T: Stamp> Stamp for Option<T> {
    fn stamp(&mut self, path: &str) {
        if let Some(v) = self {
            v.stamp(path);
        }
    }
}

impl<T> Merge for Vec<T> {
    fn merge(&mut self, child: Self) {
        *self = child;
    }
}

impl<T: Stamp> Stamp for Vec<T> {
    fn stamp(&mut self, path: &str) {
        for (i, v) in self.iter_mut().enumerate() {
            v.stamp(&format!("{path}[{i}]"));
        }
    }
}

impl<T: Merge> Merge for BTreeMap<String, T> {
    fn merge(&mut self, child: Self) {
        for (k, v) in child {
            match self.get_mut(&k) {
                Some(existing) => existing.merge(v),
                None => {
                    self.insert(k, v);
                }
            }
        }
    }
}

impl<T: Stamp> Stamp for BTreeMap<String, T> {
    fn stamp(&mut self, path: &str) {
        for (k, v) in self.iter_mut() {
            v.stamp(&field_path(path, k));
        }
    }
}

impl<T> Merge for StrOr<T> {
    fn merge(&mut self, child: Self) {
        *self = child;
    }
}

impl<T: Stamp> Stamp for StrOr<T> {
    fn stamp(&mut self, path: &str) {
        if let StrOr::Full(v) = self {
            v.stamp(path);
        }
    }
}

/// Implements [`Stamp`] for a struct by stamping every field.
macro_rules! stamp_struct {
    ($ty:ty { $($f:ident),* $(,)? }) => {
        impl $crate::recipe::merge::Stamp for $ty {
            fn stamp(&mut self, path: &str) {
                let Self { $($f),* } = self;
                $( $crate::recipe::merge::Stamp::stamp(
                    $f,
                    &$crate::recipe::merge::field_path(path, stringify!($f)),
                ); )*
            }
        }
    };
}

/// Implements [`Merge`] (field by field) and [`Stamp`] for a struct whose fields all merge.
macro_rules! merge_struct {
    ($ty:ty { $($f:ident),* $(,)? }) => {
        impl $crate::recipe::merge::Merge for $ty {
            fn merge(&mut self, child: Self) {
                let Self { $($f),* } = child;
                $( $crate::recipe::merge::Merge::merge(&mut self.$f, $f); )*
            }
        }
        $crate::recipe::merge::stamp_struct!($ty { $($f),* });
    };
}

/// Implements [`Merge`] (the child replaces the whole value) and [`Stamp`] for a struct.
macro_rules! replace_struct {
    ($ty:ty { $($f:ident),* $(,)? }) => {
        impl $crate::recipe::merge::Merge for $ty {
            fn merge(&mut self, child: Self) {
                *self = child;
            }
        }
        $crate::recipe::merge::stamp_struct!($ty { $($f),* });
    };
}

pub(crate) use {leaf, merge_struct, replace_struct, stamp_struct};

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_merge_deeply_and_lists_replace() {
        let mut parent = json!({"a": 1, "m": {"x": 1, "y": [1, 2]}, "keep": true});
        merge_value(
            &mut parent,
            json!({"a": 2, "m": {"y": [3], "z": "new"}, "n": null}),
        );
        assert_eq!(
            parent,
            json!({"a": 2, "m": {"x": 1, "y": [3], "z": "new"}, "keep": true, "n": null})
        );
    }

    #[test]
    fn options_and_paths() {
        let mut a: Option<u32> = Some(1);
        a.merge(None);
        assert_eq!(a, Some(1));
        a.merge(Some(2));
        assert_eq!(a, Some(2));
        assert_eq!(field_path("", "r#type"), "type");
        assert_eq!(field_path("nodes[0]", "users"), "nodes[0].users");
    }
}
