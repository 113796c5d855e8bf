//! `--json` for `validate`, `plan`, `build`, `merge` and `localize`: one JSON object on stdout, versioned
//! (`"version": 1`), laid out in `docs/cli-json.md`. Errors are JSON too when `--json` was
//! given: `{"version": 1, "command": …, "ok": false, "errors": [...]}` on stdout, exit status 1,
//! each error with the file, line, column and field of a recipe problem (`null` when the error
//! is not about a place in a recipe).

use serde_json::{Value, json};

use piimage::plan::PlanError;
use piimage::recipe::RecipeError;

/// The layout version of every `--json` object; bumped only on a removal, rename or change of
/// meaning (fields are added without a bump).
pub const VERSION: u32 = 1;

/// Prints `value` (pretty, one object, a final newline).
pub fn print(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The success object's common head: `version`, `command`, `ok: true`, and `fields`.
pub fn ok(command: &str, fields: Value) -> Value {
    let mut v = json!({ "version": VERSION, "command": command, "ok": true });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), fields) {
        obj.extend(more);
    }
    v
}

/// The error object for `err`: every recipe problem with its place, or the error chain as
/// one message.
pub fn error(command: &str, err: &anyhow::Error, message: &str) -> Value {
    let problems = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<RecipeError>());
    let errors: Vec<Value> = match problems {
        Some(r) => r
            .problems
            .iter()
            .map(|p| {
                let place = p.line > 0;
                json!({
                    "file": p.file.display().to_string(),
                    "line": place.then_some(p.line),
                    "column": place.then_some(p.column),
                    "field": (!p.field.is_empty()).then(|| p.field.clone()),
                    "message": p.message,
                })
            })
            .collect(),
        // A planning error about a setting whose place the recipe recorded (a user's name,
        // uid or group) points there; its message is still the whole chain.
        None => match err
            .chain()
            .find_map(|cause| cause.downcast_ref::<PlanError>())
            .and_then(PlanError::origin)
        {
            Some(at) => {
                let place = at.line > 0;
                vec![json!({
                    "file": at.file.display().to_string(),
                    "line": place.then_some(at.line),
                    "column": place.then_some(at.column),
                    "field": (!at.field.is_empty()).then(|| at.field.clone()),
                    "message": message,
                })]
            }
            None => vec![json!({
                "file": null, "line": null, "column": null, "field": null, "message": message,
            })],
        },
    };
    json!({ "version": VERSION, "command": command, "ok": false, "errors": errors })
}

#[cfg(test)]
mod tests {
    use super::*;
    use piimage::recipe::Problem;

    #[test]
    fn recipe_problems_keep_their_place() {
        let problem = Problem {
            file: "r.yaml".into(),
            line: 3,
            column: 5,
            field: "nodes[0].name".into(),
            message: "bad name".into(),
            snippet: None,
        };
        let err = anyhow::Error::new(RecipeError::one(problem)).context("building r.yaml");
        let v = error("build", &err, "unused");
        assert_eq!(v["ok"], false);
        assert_eq!(v["errors"][0]["line"], 3);
        assert_eq!(v["errors"][0]["column"], 5);
        assert_eq!(v["errors"][0]["field"], "nodes[0].name");
        assert_eq!(v["errors"][0]["file"], "r.yaml");
    }

    #[test]
    fn plan_errors_point_at_the_recipe_when_it_recorded_the_place() {
        let at = piimage::recipe::Origin {
            file: std::path::Path::new("r.yaml").into(),
            line: 9,
            column: 15,
            field: "nodes[1].users[0].groups[2]".into(),
        };
        let plan = PlanError::Node {
            node: "worker-2".into(),
            at: Some(Box::new(at)),
            conflict: piimage::plan::NodeConflict::UnknownGroup {
                user: "alice".into(),
                group: "dockr".into(),
            },
        };
        let message = piimage::error::chain(&plan);
        assert_eq!(
            message,
            "node worker-2: user alice: group dockr does not exist in the image"
        );
        let err = anyhow::Error::new(plan).context("building r.yaml");
        let v = error("build", &err, &message);
        let e = &v["errors"][0];
        assert_eq!(
            (&e["file"], &e["line"], &e["column"], &e["field"]),
            (
                &json!("r.yaml"),
                &json!(9),
                &json!(15),
                &json!("nodes[1].users[0].groups[2]")
            )
        );
        assert_eq!(e["message"], message.as_str());
    }

    #[test]
    fn other_errors_are_one_message() {
        let err = anyhow::anyhow!("disk full");
        let v = error("plan", &err, "disk full");
        assert_eq!(v["errors"][0]["message"], "disk full");
        assert!(v["errors"][0]["line"].is_null());
    }
}
