//! `piimage schema`: the JSON Schema (draft 2020-12) of recipe files, generated from the
//! recipe's serde types (see [`piimage::recipe::json_schema`]). `recipes/schema.json` is the
//! same text, kept equal by a test.

use clap::Args;

use super::GlobalArgs;

/// Arguments of `piimage schema`.
#[derive(Debug, Args)]
#[command(after_help = "\
The schema checks the shape of one recipe file: field names (every mapping refuses unknown
fields), types and enum values. It cannot check what validate checks beyond the shape (names,
addresses, keys, ranges, files). Every field is optional in it, as any may come from the file a
recipe extends. Editors that read `# yaml-language-server: $schema=...` comments (or a schema
mapping) complete and check recipes with it.")]
pub struct SchemaArgs {}

/// The schema as printed (pretty JSON and a final newline).
pub fn text() -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(&piimage::recipe::json_schema())?;
    s.push('\n');
    Ok(s)
}

/// Runs `piimage schema`.
pub fn run(_args: &SchemaArgs, _global: &GlobalArgs) -> anyhow::Result<()> {
    print!("{}", text()?);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn shipped_schema_is_the_generated_one() {
        let shipped = include_str!("../../recipes/schema.json");
        assert!(
            shipped == super::text().unwrap(),
            "recipes/schema.json is stale: run `cargo run -- schema > recipes/schema.json`"
        );
    }
}
