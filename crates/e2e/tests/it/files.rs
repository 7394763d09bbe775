use e2e::*;
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}")).remove(0)
}

#[test]
fn docker_compose_runs_dynamodb_local_and_postgres_with_the_schema() {
    let doc = load("docker-compose.yml");
    let ddb = &doc["services"]["dynamodb-local"];
    assert!(ddb["image"].as_str().unwrap().starts_with("amazon/dynamodb-local"));
    assert!(ddb["command"].as_str().unwrap().contains("-sharedDb"));
    assert_eq!(ddb["ports"][0].as_str(), Some("8000:8000"));
    let db = &doc["services"]["db"];
    assert!(db["image"].as_str().unwrap().starts_with("postgres"));
    assert_eq!(db["ports"][0].as_str(), Some("5432:5432"));
    assert_eq!(db["environment"]["POSTGRES_DB"].as_str(), Some("cruddur"));
    let mounts: Vec<&str> = db["volumes"].as_vec().unwrap().iter().filter_map(Yaml::as_str).collect();
    for file in ["db/schema.sql", "db/seed.sql"] {
        assert!(mounts.iter().any(|m| m.starts_with(&format!("./{file}:/docker-entrypoint-initdb.d/"))), "{file} not mounted");
        assert!(root().join(file).exists());
    }
}

/// Every `./path` word of a lifecycle command names an executable file of this repository.
fn assert_commands_exist(file: &str, cmd: &str) {
    use std::os::unix::fs::PermissionsExt;
    for word in cmd.split_whitespace().filter(|w| w.starts_with("./")) {
        let meta = std::fs::metadata(root().join(word)).unwrap_or_else(|e| panic!("{file} names {word}: {e}"));
        assert!(meta.is_file() && meta.permissions().mode() & 0o111 != 0, "{file} names {word}, which is not executable");
    }
}

#[test]
fn gitpod_builds_then_starts_loads_and_seeds() {
    let doc = load(".gitpod.yml");
    let task = &doc["tasks"][0];
    let init = task["init"].as_str().unwrap();
    assert!(init.contains("./bin/setup --build all"), "{init}");
    let cmd = task["command"].as_str().unwrap();
    assert_commands_exist(".gitpod.yml", init);
    assert_commands_exist(".gitpod.yml", cmd);
    let order: Vec<usize> = ["./bin/local/up", "./bin/ddb/schema-load", "./bin/ddb/seed"]
        .iter()
        .map(|s| cmd.find(s).unwrap_or_else(|| panic!("{s} missing from .gitpod.yml")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{cmd}");
}

/// Codespaces, VS Code Dev Containers, Ona: Rust, Java 17, npm and Docker (for docker-compose's
/// Postgres) in the container; the build in the prebuild-friendly step, ./bin/setup at each start.
#[test]
fn devcontainer_builds_ahead_and_sets_up_at_each_start() {
    let file = ".devcontainer/devcontainer.json";
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root().join(file)).unwrap()).unwrap();
    assert!(doc["image"].as_str().unwrap().contains("devcontainers/rust"));
    let features = doc["features"].as_object().unwrap();
    let feature = |name: &str| features.iter().find(|(k, _)| k.contains(name)).map(|(_, v)| v.clone());
    assert_eq!(feature("features/java").unwrap()["version"], "17");
    assert!(feature("features/node").is_some() && feature("docker-in-docker").is_some(), "{features:?}");
    let build = doc["updateContentCommand"].as_str().unwrap();
    assert!(build.contains("./bin/setup --build all"), "{build}");
    let start = doc["postStartCommand"].as_str().unwrap();
    assert!(!start.contains("--build"), "the per-start step builds nothing: {start}");
    assert_commands_exist(file, build);
    assert_commands_exist(file, start);
    let script = std::fs::read_to_string(root().join(start.trim())).unwrap();
    let up = script.find("docker compose up -d db").expect("Postgres from docker-compose's db service");
    assert!(script[up..].contains("exec ./bin/setup"), "{script}");
    assert!(load("docker-compose.yml")["services"]["db"]["image"].as_str().unwrap().starts_with("postgres"));
}

/// `cargo metadata` of the workspace's own packages (no dependencies), as JSON.
pub(crate) fn workspace_metadata() -> serde_json::Value {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked", "--offline"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A script in bin/, as its crate's `[package.metadata.cruddur]` declares it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Script {
    package: String,
    binary: String,
    build: String,
    path: String,
}

/// Every script in bin/, read by cargo (a real TOML parser) from the crates' manifests.
fn scripts() -> Vec<Script> {
    let mut scripts = Vec::new();
    for package in workspace_metadata()["packages"].as_array().unwrap() {
        let Some(meta) = package["metadata"].get("cruddur") else { continue };
        let name = package["name"].as_str().unwrap();
        let bins: Vec<&str> = package["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(bins.len(), 1, "{name}: a script's crate builds one binary: {bins:?}");
        let build = meta["build"].as_str().unwrap_or_else(|| panic!("{name}: [package.metadata.cruddur] lacks build"));
        assert!(["first", "rest"].contains(&build), "{name}: build = {build:?}, not \"first\" or \"rest\"");
        for path in meta["scripts"].as_array().unwrap_or_else(|| panic!("{name}: [package.metadata.cruddur] lacks scripts")) {
            let path = path.as_str().unwrap().to_string();
            assert!(path.starts_with("bin/"), "{name}: script {path} is not in bin/");
            scripts.push(Script { package: name.into(), binary: bins[0].into(), build: build.into(), path });
        }
    }
    scripts.sort();
    assert!(scripts.len() >= 13, "{scripts:?}");
    scripts
}

/// ./bin/setup reads the same scripts from the manifests (with awk: it runs before anything is
/// built) as cargo does.
#[test]
fn setup_lists_the_scripts_that_the_manifests_declare() {
    let out = Command::new(root().join("bin/setup")).arg("--list").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut listed: Vec<Script> = stdout(&out)
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w.len(), 4, "{l}");
            Script { package: w[0].into(), binary: w[1].into(), build: w[2].into(), path: w[3].into() }
        })
        .collect();
    listed.sort();
    assert_eq!(listed, scripts());
}

/// Every shim in bin/ is the one ./bin/setup --shims writes for a script of the manifests, and
/// none is missing; each runs a binary this workspace builds and, when it is missing, builds it
/// through ./bin/setup (or with CRUDDUR_NO_BUILD set, says how to).
#[test]
fn bin_shims_are_written_from_the_manifests_and_explain_when_missing() {
    let check = Command::new(root().join("bin/setup")).args(["--shims", "--check"]).output().unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    let mut shims = Vec::new();
    let mut stack = vec![root().join("bin")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read_to_string(&p).unwrap().lines().any(|l| l == "exec \"$b\" \"$@\"") {
                shims.push(p.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    shims.sort();
    let scripts = scripts();
    let mut declared: Vec<String> = scripts.iter().map(|s| s.path.clone()).collect();
    declared.sort();
    assert_eq!(shims, declared, "the shims in bin/ are not the scripts of crates/*/Cargo.toml: run ./bin/setup --shims");
    let empty = std::env::temp_dir().join(format!("no-target-{}", uuid::Uuid::new_v4().simple()));
    for Script { binary, path, .. } in &scripts {
        let shim = root().join(path);
        let text = std::fs::read_to_string(&shim).unwrap();
        assert!(text.contains(&format!("/release/{binary}\"")), "{path} does not run {binary}");
        assert!(bin(binary).exists(), "{path} runs {binary}, which is not built");
        assert!(text.contains(&format!("/bin/setup\" --build-missing {path} ")), "{path} does not build itself");
        let out = Command::new(&shim).env("CARGO_TARGET_DIR", &empty).env("CRUDDUR_NO_BUILD", "1").output().unwrap();
        assert_eq!(out.status.code(), Some(127));
        assert!(stderr(&out).contains("not built yet; run ./bin/setup"), "{}", stderr(&out));
        let target = bin(binary).parent().and_then(|p| p.parent()).unwrap().to_path_buf();
        let help = Command::new(&shim).arg("--help").env("CARGO_TARGET_DIR", target).output().unwrap();
        assert!(help.status.success() && stdout(&help).contains("Usage"), "{path}");
    }
}

/// README's scripts table has a row for each crate's scripts (its first script opens the row, the
/// others are named in it), and every shim it names is a script of the manifests.
#[test]
fn readme_scripts_table_follows_the_manifests() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let table = readme.split("\n## Scripts\n").nth(1).expect("README has a Scripts section");
    let rows: Vec<&str> = table.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).collect();
    let opening = |row: &str| row.trim_start_matches("| `").split([' ', '`']).next().unwrap_or_default().to_string();
    let scripts = scripts();
    for s in &scripts {
        let siblings: Vec<&Script> = scripts.iter().filter(|o| o.package == s.package).collect();
        let (first, row) = siblings
            .iter()
            .find_map(|o| rows.iter().find(|r| opening(r) == o.path).map(|r| (&o.path, r)))
            .unwrap_or_else(|| panic!("README's scripts table has no row for {} (nor for the other scripts of {})", s.path, s.package));
        let name = s.path.rsplit('/').next().unwrap();
        let named = row.contains(&format!("`{}`", s.path)) || row.contains(&format!("`{name}`"));
        assert!(s.path == *first || named, "README's row of {first} does not name {} (as `{name}` or its path)", s.path);
    }
    for row in &rows {
        let path = opening(row);
        let is_shim = std::fs::read_to_string(root().join(&path)).is_ok_and(|t| t.lines().any(|l| l == "exec \"$b\" \"$@\""));
        assert!(!is_shim || scripts.iter().any(|s| s.path == path), "README names {path}, which no crate's manifest declares");
    }
}

/// ./bin/setup builds a few packages, ./bin/test the whole workspace: every dependency they share
/// gets the same features in both (crates/workspace-hack, kept by cargo hakari, sees to that), or
/// the second build compiles hyper, serde and the AWS SDK above them again. Only ddb-core's and
/// ddb-cli's own differ (the cognito feature).
#[test]
fn setup_packages_and_the_workspace_build_shared_dependencies_alike() {
    let features = |select: &[String]| -> std::collections::BTreeMap<String, String> {
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["tree", "--locked", "--offline", "-e", "normal,build", "--prefix", "none", "-f", "{p}|{f}"])
            .args(select)
            .current_dir(root())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        text.lines()
            .filter(|l| !l.ends_with("(*)"))
            .filter_map(|l| l.split_once('|'))
            .map(|(p, f)| (p.replace(" (proc-macro)", "").trim().to_string(), f.trim().to_string()))
            .collect()
    };
    let mut select: Vec<String> = scripts().into_iter().filter(|s| s.build == "first").map(|s| format!("--package={}", s.package)).collect();
    select.dedup();
    assert!(select.len() >= 5, "{select:?}");
    let (ours, all) = (features(&select), features(&["--workspace".to_string()]));
    let differ: Vec<String> = ours
        .iter()
        .filter(|(p, f)| !p.starts_with("ddb-core ") && !p.starts_with("ddb-cli ") && all.get(*p).is_some_and(|w| w != *f))
        .map(|(p, f)| format!("{p}: [{f}] for setup, [{}] for the workspace", all[p]))
        .collect();
    assert!(differ.is_empty(), "{differ:#?}");
}

/// docs/bad-inputs.md's table is what docs/bad-inputs.json renders to (the test
/// `reliability::bad_inputs_from_the_docs` runs the JSON); with UPDATE_DOCS=1 this test writes it.
#[test]
fn bad_inputs_md_is_rendered_from_the_data() {
    use e2e::bad_inputs::{load, render, DATA, DOC, MARKER};
    let path = root().join(DOC);
    let doc = std::fs::read_to_string(&path).unwrap();
    let (prose, rendered) = doc.split_once(&format!("{MARKER}\n")).unwrap_or_else(|| panic!("{DOC} lacks the line {MARKER}"));
    let want = format!("\n{}", render(&load()));
    if rendered == want {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, format!("{prose}{MARKER}\n{want}")).unwrap();
        eprintln!("{DOC}: rendered again from {DATA}");
        return;
    }
    panic!(
        "{DOC} is not what {DATA} renders; regenerate it with\n  UPDATE_DOCS=1 cargo test --release --workspace --locked -- files::bad_inputs_md_is_rendered_from_the_data"
    );
}
