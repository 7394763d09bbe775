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

#[test]
fn gitpod_builds_then_starts_loads_and_seeds() {
    let doc = load(".gitpod.yml");
    let task = &doc["tasks"][0];
    assert!(task["init"].as_str().unwrap().contains("cargo build --release"));
    let cmd = task["command"].as_str().unwrap();
    let order: Vec<usize> = ["./bin/local/up", "./bin/ddb/schema-load", "./bin/ddb/seed"]
        .iter()
        .map(|s| cmd.find(s).unwrap_or_else(|| panic!("{s} missing from .gitpod.yml")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{cmd}");
}

/// Every script in bin/ that runs a binary names one this workspace builds, and says how to
/// build it when it is missing.
#[test]
fn bin_shims_name_built_binaries_and_explain_when_missing() {
    let mut shims = Vec::new();
    let mut stack = vec![root().join("bin")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read_to_string(&p).unwrap().contains("exec \"$b\"") {
                shims.push(p);
            }
        }
    }
    assert!(shims.len() >= 6, "{shims:?}");
    let empty = std::env::temp_dir().join(format!("no-target-{}", uuid::Uuid::new_v4().simple()));
    for shim in shims {
        let text = std::fs::read_to_string(&shim).unwrap();
        let name = text.split("/release/").nth(1).unwrap().split('"').next().unwrap();
        assert!(bin(name).exists(), "{} runs {name}, which is not built", shim.display());
        let out = Command::new(&shim).env("CARGO_TARGET_DIR", &empty).output().unwrap();
        assert_eq!(out.status.code(), Some(127));
        assert!(stderr(&out).contains("not built yet; run ./bin/setup"), "{}", stderr(&out));
        let target = bin(name).parent().and_then(|p| p.parent()).unwrap().to_path_buf();
        let help = Command::new(&shim).arg("--help").env("CARGO_TARGET_DIR", target).output().unwrap();
        assert!(help.status.success() && stdout(&help).contains("Usage"), "{}", shim.display());
    }
}
