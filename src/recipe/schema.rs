//! The JSON Schema of a recipe file, generated from the raw serde types (schemars), so it
//! follows every field added to them: mappings refuse unknown fields
//! (`additionalProperties: false`, from `deny_unknown_fields`), enums list their values,
//! fields that take a string or a mapping (`{ file: … }`, `{ env: … }`, `{ rename: … }`) say
//! both. The schema checks shape only: what `validate` checks beyond it (names, addresses,
//! keys, ranges, merged `extends` chains) needs piimage. A recipe that `extends` another is
//! checked file by file: every field is optional in the schema, since any of them may come from
//! the file extended.

use super::raw::RawRecipe;

/// The schema's `$id`.
pub const SCHEMA_ID: &str = "https://example.invalid/piimage/recipe.schema.json";

/// The JSON Schema (draft 2020-12) of a recipe file.
#[must_use]
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<RawRecipe>();
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("$id".into(), SCHEMA_ID.into());
        obj.insert("title".into(), "piimage recipe".into());
        obj.insert(
            "description".into(),
            "A piimage cluster recipe (YAML). Field reference: `piimage help recipe`.".into(),
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_refuses_unknown_fields() {
        let s = json_schema();
        assert_eq!(s["additionalProperties"], serde_json::Value::Bool(false));
        for field in [
            "extends", "cluster", "nodes", "users", "ssh", "network", "seed",
        ] {
            assert!(s["properties"].get(field).is_some(), "{field} missing");
        }
    }
}
