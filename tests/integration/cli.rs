//! Issue 10 (items 5 and 6): the command-line conventions and machine-readable output.
//! Oracles: bash's `complete -p`, `man -l` (man-db and groff, warnings on), Python's
//! `jsonschema` (draft 2020-12) for the recipe schema, Python's `json` for `--json` output,
//! `sha256sum` for the files `build --json` names, and `script` for a real terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xtask::fixtures::{self, Fixture, Format};

use crate::support::run_ok;
use crate::support::{Piimage, stderr, stdout};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary's path, for the shell scripts that run it.
fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_piimage")
}

/// The raw fixture: plan and validate read it in place (no decompression into the cache).
fn raw_base() -> PathBuf {
    fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap()
}

/// Runs piimage in `cwd` with a private cache and `envs`.
fn piimage(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Piimage::new()
        .args(args)
        .private_cache()
        .current_dir(cwd)
        .envs(envs)
        .run()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Python reads `text` as JSON and prints `expr` of it (`j` is the object).
fn py_json(text: &str, expr: &str) -> String {
    let dir = crate::support::tmp();
    let f = dir.path().join("out.json");
    std::fs::write(&f, text).unwrap();
    let script = format!("import json,sys; j=json.load(open(sys.argv[1])); print(({expr}))");
    run_ok("python3", &["-c", &script, f.to_str().unwrap()])
        .trim()
        .to_owned()
}

#[test]
fn issue10_bash_loads_the_completion() {
    let script = format!(
        "source <('{}' completions bash) && complete -p piimage",
        bin()
    );
    let out = run_ok("bash", &["-c", &script]);
    assert!(out.contains("complete") && out.contains("piimage"), "{out}");
    // The completion offers the subcommands (bash asks the function for `piimage <TAB>`).
    let script = format!(
        "source <('{}' completions bash); COMP_WORDS=(piimage ''); COMP_CWORD=1; \
         _piimage piimage '' piimage; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin()
    );
    let words = run_ok("bash", &["-c", &script]);
    for sub in [
        "build",
        "plan",
        "validate",
        "init",
        "schema",
        "man",
        "completions",
    ] {
        assert!(
            words.lines().any(|w| w == sub),
            "{sub} not offered:\n{words}"
        );
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = Piimage::new().args(["completions", shell]).run();
        assert!(out.status.success(), "{shell}");
        assert!(stdout(&out).contains("piimage"), "{shell}");
    }
}

/// `man -l` renders the page with groff's warnings on and says nothing on stderr.
fn man_renders(page: &Path) -> String {
    let out = Command::new("man")
        .args(["--warnings", "-E", "UTF-8", "-P", "cat", "-l"])
        .arg(page)
        .env("MANWIDTH", "100")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("man (man-db) is installed by ci/test.sh");
    assert!(
        out.status.success(),
        "man -l {}: {}",
        page.display(),
        stderr(&out)
    );
    assert_eq!(stderr(&out), "", "man -l {} warned", page.display());
    stdout(&out)
}

#[test]
fn issue10_man_page_renders_and_lists_every_subcommand() {
    let dir = crate::support::tmp();
    let page = dir.path().join("piimage.1");
    let out = Piimage::new().args(["man"]).run();
    std::fs::write(&page, &out.stdout).unwrap();
    let text = man_renders(&page);
    let help = stdout(&Piimage::new().args(["--help"]).success());
    let subs: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(subs.len() >= 11, "{subs:?}");
    for sub in &subs {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("piimage-{sub}"))
                    || l.trim_start().starts_with(sub)),
            "{sub} missing from the man page"
        );
    }
    // One page per subcommand with --out.
    let pages = dir.path().join("pages");
    ok(
        &piimage(dir.path(), &["man", "--out", pages.to_str().unwrap()], &[]),
        "man --out",
    );
    for sub in &subs {
        let p = pages.join(format!("piimage-{sub}.1"));
        assert!(p.exists(), "{}", p.display());
    }
    let build = man_renders(&pages.join("piimage-build.1"));
    assert!(build.contains("--shard"), "{build}");
}

#[test]
fn issue10_help_recipe_is_the_reference_and_help_names_no_repository_file() {
    let text = stdout(&Piimage::new().args(["help", "recipe"]).success());
    let shipped = std::fs::read_to_string(repo().join("recipes/README.md")).unwrap();
    assert_eq!(text, shipped);
    let build = stdout(&Piimage::new().args(["help", "build"]).success());
    assert!(build.contains("--shard"), "{build}");
    let out = Piimage::new().args(["help", "nosuch"]).run();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("topics: recipe, "),
        "{}",
        stderr(&out)
    );
    for sub in ["validate", "plan", "build", "init", "schema"] {
        let help = stdout(&Piimage::new().args([sub, "--help"]).success());
        assert!(
            !help.contains("recipes/README.md"),
            "{sub} --help names recipes/README.md"
        );
    }
    assert!(
        stdout(&Piimage::new().args(["validate", "--help"]).success())
            .contains("piimage help recipe")
    );
}

#[test]
fn issue10_init_writes_a_recipe_that_validates_and_builds() {
    let dir = crate::support::tmp();
    let key = repo().join("recipes/keys/admin.pub");
    let base = raw_base();
    let args = [
        "init",
        "--out",
        "lab/c.yaml",
        "--nodes",
        "4",
        "--name",
        "demo",
        "--base",
        base.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    std::fs::create_dir(dir.path().join("lab")).unwrap();
    ok(&piimage(dir.path(), &args, &[]), "init");
    let recipe = dir.path().join("lab/c.yaml");
    let text = std::fs::read_to_string(&recipe).unwrap();
    assert!(text.contains("\n# "), "commented:\n{text}");
    // Refuses to replace the file, and leaves it as it was.
    let again = piimage(dir.path(), &args, &[]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&recipe).unwrap(), text);

    let v = ok(
        &piimage(dir.path(), &["validate", "lab/c.yaml", "--json"], &[]),
        "validate",
    );
    assert_eq!(py_json(&v, "j['cluster']['name']"), "demo");
    assert_eq!(
        py_json(&v, "','.join(n['name'] for n in j['nodes'])"),
        "node-01,node-02,node-03,node-04"
    );
    assert_eq!(py_json(&v, "j['nodes'][0]['users']"), "['admin']");

    // It builds (fast outputs through a recipe extending it); -q hides bars, not the summary.
    std::fs::write(
        dir.path().join("lab/fast.yaml"),
        "extends: c.yaml\noutput: { formats: [img.zst] }\n",
    )
    .unwrap();
    let out = piimage(
        dir.path(),
        &[
            "build",
            "lab/fast.yaml",
            "--node",
            "node-02",
            "-q",
            "--json",
        ],
        &[],
    );
    let j = ok(&out, "build");
    assert_eq!(py_json(&j, "j['version'], j['ok']"), "(1, True)");
    assert_eq!(
        py_json(&j, "j['nodes'][0]['name'], j['nodes'][0]['stem']"),
        "('node-02', 'demo-node-02')"
    );
    let name = py_json(&j, "j['nodes'][0]['files'][0]['name']");
    assert_eq!(name, "demo-node-02.img.zst");
    let out_dir = dir.path().join("lab/out");
    let sum = run_ok("sha256sum", &[out_dir.join(&name).to_str().unwrap()]);
    assert_eq!(
        sum.split_whitespace().next().unwrap(),
        py_json(&j, "j['nodes'][0]['files'][0]['sha256']")
    );
    let listed = py_json(&j, "sorted(j['cluster_files'])");
    assert!(
        listed.contains("'SHA256SUMS'") && listed.contains("'ssh_config'"),
        "{listed}"
    );

    let quiet = piimage(
        dir.path(),
        &["build", "lab/fast.yaml", "--node", "node-01", "--quiet"],
        &[],
    );
    let summary = ok(&quiet, "build -q");
    assert!(summary.contains("wrote 1 node image(s)"), "{summary}");
    assert!(summary.contains("demo-node-01.img.zst"), "{summary}");
}

/// The recipe as JSON, parsed by piimage's own YAML parser (YAML 1.2, as `validate` reads it).
fn yaml_to_json(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let value: serde_json::Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_string(&value).unwrap()
}

/// Python's jsonschema checks each JSON file against the schema; one line per file,
/// `ok` or the first error.
fn check_with_jsonschema(schema: &Path, docs: &[PathBuf]) -> Vec<String> {
    let script = "import json,sys,jsonschema\n\
        s=json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(s)\n\
        v=jsonschema.Draft202012Validator(s)\n\
        for f in sys.argv[2:]:\n\
        \x20   e=sorted(v.iter_errors(json.load(open(f))), key=lambda e: list(e.path))\n\
        \x20   print('ok' if not e else (list(e[0].path), e[0].message))\n";
    let mut args = vec!["-c", script, schema.to_str().unwrap()];
    args.extend(docs.iter().map(|d| d.to_str().unwrap()));
    run_ok("python3", &args)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn issue10_every_recipe_validates_against_the_schema_and_it_rejects_shape_errors() {
    let dir = crate::support::tmp();
    let schema = dir.path().join("schema.json");
    let text = stdout(&Piimage::new().args(["schema"]).success());
    std::fs::write(&schema, &text).unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string(repo().join("recipes/schema.json")).unwrap()
    );
    let mut recipes = Vec::new();
    for d in ["recipes", "tests/fixtures/recipes"] {
        for e in std::fs::read_dir(repo().join(d)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                recipes.push(p);
            }
        }
    }
    recipes.sort();
    assert!(recipes.len() >= 5, "{recipes:?}");
    let mut docs = Vec::new();
    for (i, r) in recipes.iter().enumerate() {
        let j = dir.path().join(format!("{i}.json"));
        std::fs::write(&j, yaml_to_json(r)).unwrap();
        docs.push(j);
    }
    let results = check_with_jsonschema(&schema, &docs);
    for (r, res) in recipes.iter().zip(&results) {
        assert_eq!(res, "ok", "{} does not match the schema", r.display());
    }

    // Shape errors: validate refuses each at its field, and so does the schema.
    let head = format!(
        "cluster: {{ name: lab }}\nbase: {{ path: {} }}\nnodes: [{{ name: n1 }}]\n",
        raw_base().display()
    );
    let cases = [
        ("unknown field", "ssh: { enabel: true }\n", "enabel"),
        ("wrong type", "ssh: { enable: [1] }\n", "enable"),
        ("list wanted", "users: { name: bob }\n", "users"),
        (
            "unknown enum value",
            "ssh: { host_keys: make }\n",
            "host_keys",
        ),
        ("secret form", "seed: { path: x }\n", "seed"),
        ("unknown top-level", "nodez: []\n", "nodez"),
    ];
    let mut docs = Vec::new();
    for (i, (name, yaml, field)) in cases.iter().enumerate() {
        let r = dir.path().join(format!("bad{i}.yaml"));
        std::fs::write(&r, format!("{head}{yaml}")).unwrap();
        let out = piimage(dir.path(), &["validate", r.to_str().unwrap()], &[]);
        assert!(!out.status.success(), "{name}: validate accepted it");
        assert!(stderr(&out).contains(field), "{name}: {}", stderr(&out));
        let j = dir.path().join(format!("bad{i}.json"));
        std::fs::write(&j, yaml_to_json(&r)).unwrap();
        docs.push(j);
    }
    for ((name, ..), res) in cases.iter().zip(check_with_jsonschema(&schema, &docs)) {
        assert_ne!(res, "ok", "{name}: the schema accepted it");
    }
}

#[test]
fn issue10_unknown_node_lists_the_valid_names() {
    let base = raw_base();
    let plan = |node: &str| {
        let args = [
            "plan",
            "recipes/worker.yaml",
            "--base",
            base.to_str().unwrap(),
            "--node",
            node,
        ];
        let out = piimage(&repo(), &args, &[]);
        assert!(!out.status.success());
        stderr(&out)
    };
    let err = plan("worker-9");
    assert!(
        err.contains("--node worker-9: the recipe has no such node;"),
        "{err}"
    );
    assert!(
        err.contains("its nodes are: gw, worker-01, worker-02, worker-03, worker-04, worker-05, worker-06, worker-07, worker-08"),
        "{err}"
    );
    let err = plan("worker-3");
    assert!(err.contains("(did you mean worker-03?)"), "{err}");
}

#[test]
fn issue10_json_errors_name_file_line_column_and_field() {
    let dir = crate::support::tmp();
    let r = dir.path().join("r.yaml");
    std::fs::write(
        &r,
        format!(
            "cluster: {{ name: lab }}\nbase: {{ path: {} }}\nnodes:\n  - name: n1\n    address: 10.0.0.300\n",
            raw_base().display()
        ),
    )
    .unwrap();
    let out = piimage(dir.path(), &["validate", "r.yaml", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let j = stdout(&out);
    assert_eq!(
        py_json(&j, "j['version'], j['command'], j['ok']"),
        "(1, 'validate', False)"
    );
    assert_eq!(
        py_json(
            &j,
            "j['errors'][0]['file'], j['errors'][0]['line'], j['errors'][0]['field']"
        ),
        "('r.yaml', 5, 'nodes[0].address')"
    );
    assert!(
        py_json(&j, "j['errors'][0]['column']")
            .parse::<u32>()
            .unwrap()
            > 0
    );
    // --node errors are JSON too (not about a recipe place).
    let out = piimage(
        &repo(),
        &[
            "build",
            "recipes/worker.yaml",
            "--node",
            "worker-9",
            "--json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let j = stdout(&out);
    assert_eq!(py_json(&j, "j['errors'][0]['file']"), "None");
    assert!(py_json(&j, "j['errors'][0]['message']").contains("gw, worker-01"));
}

#[test]
fn issue10_validate_and_plan_json() {
    let base = raw_base();
    let v = ok(
        &piimage(&repo(), &["validate", "recipes/worker.yaml", "--json"], &[]),
        "validate",
    );
    assert_eq!(
        py_json(
            &v,
            "len(j['nodes']), sum(n['selected'] for n in j['nodes'])"
        ),
        "(9, 8)"
    );
    assert_eq!(
        py_json(
            &v,
            "[(n['address'], n['route_via'], n['fqdn']) for n in j['nodes'] if n['name']=='worker-03'][0]"
        ),
        "('10.42.0.13/24', 'gw', 'worker-03.pico.lan')"
    );
    assert_eq!(
        py_json(&v, "sorted(j['recipe'])"),
        "['recipes/cluster.yaml', 'recipes/worker.yaml']"
    );

    let p = ok(
        &piimage(
            &repo(),
            &[
                "plan",
                "recipes/worker.yaml",
                "--base",
                base.to_str().unwrap(),
                "--node",
                "worker-02",
                "--json",
            ],
            &[],
        ),
        "plan",
    );
    assert_eq!(
        py_json(&p, "[n['name'] for n in j['nodes']]"),
        "['worker-02']"
    );
    assert_eq!(
        py_json(
            &p,
            "[f['diff'] for f in j['nodes'][0]['files'] if f['path']=='/etc/hostname'][0]"
        ),
        "['- raspberrypi', '+ worker-02', '...']"
    );
    assert!(
        py_json(&p, "[f['action'] for f in j['nodes'][0]['files'] if f['path']=='/boot/firmware/cmdline.txt' or f['path']=='/cmdline.txt']")
            .contains("edit")
    );
}

/// Runs `piimage ARGS` on a pseudo-terminal (`script`), so stdout and stderr are terminals.
fn on_terminal(args: &[&str], no_color: bool) -> String {
    let cache = crate::support::tmp();
    let mut cmd = format!("'{}' --cache-dir '{}'", bin(), cache.path().display());
    for a in args {
        cmd.push_str(&format!(" '{a}'"));
    }
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"]).current_dir(repo());
    if no_color {
        c.env("NO_COLOR", "1");
    } else {
        c.env_remove("NO_COLOR");
    }
    let out = c.output().unwrap();
    stdout(&out)
}

#[test]
fn issue10_colour_in_plan_diffs_and_errors() {
    let base = raw_base();
    let plan = [
        "plan",
        "recipes/worker.yaml",
        "--base",
        base.to_str().unwrap(),
        "--node",
        "worker-02",
        "-q",
    ];
    // Piped: no colour unless --color always.
    let piped = ok(&piimage(&repo(), &plan, &[]), "plan");
    assert!(!piped.contains('\x1b'), "escape codes in piped output");
    assert!(piped.contains("      + worker-02\n"), "{piped}");
    let mut always = plan.to_vec();
    always.extend(["--color", "always"]);
    let coloured = ok(&piimage(&repo(), &always, &[("NO_COLOR", "1")]), "plan");
    assert!(
        coloured.contains("\x1b[32m      + worker-02\x1b[0m"),
        "{coloured}"
    );
    assert!(
        coloured.contains("\x1b[31m      - raspberrypi\x1b[0m"),
        "{coloured}"
    );
    // On a terminal: colour, unless NO_COLOR.
    let tty = on_terminal(&plan, false);
    assert!(tty.contains("\x1b[32m      + worker-02"), "{tty}");
    let tty = on_terminal(&plan, true);
    assert!(
        tty.contains("      + worker-02") && !tty.contains('\x1b'),
        "{tty}"
    );

    // Errors on stderr.
    let bad = ["validate", "recipes/nosuch.yaml"];
    let err = on_terminal(&bad, false);
    assert!(err.contains("\x1b[1;31merror:\x1b[0m"), "{err}");
    let err = on_terminal(&bad, true);
    assert!(err.contains("error:") && !err.contains('\x1b'), "{err}");
    let piped = piimage(&repo(), &bad, &[]);
    assert!(stderr(&piped).starts_with("error: "), "{}", stderr(&piped));
    let mut always = bad.to_vec();
    always.extend(["--color", "always"]);
    let forced = piimage(&repo(), &always, &[]);
    assert!(
        stderr(&forced).starts_with("\x1b[1;31merror:"),
        "{}",
        stderr(&forced)
    );
}
