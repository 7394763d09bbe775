//! Pattern E's stack, `deploy/messaging-stream.yaml`, checked without AWS: cfn-lint finds nothing
//! in it (nor in the template that `aws cloudformation package` makes of it), and
//! `bin/lambda/deploy`, run against moto's server, creates a stack whose event source mapping,
//! function, role, log group and queue carry the template's settings, read back through the API
//! with the AWS CLI.
//!
//! cfn-lint and the AWS CLI (PyPI) are installed into `.local/deploy-tools` on first use by
//! `bin/local/install-deploy-tools`; moto into `.local/moto` (`bin/local/install-moto`).

use e2e::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use uuid::Uuid;

/// The template under test.
pub(crate) fn template() -> PathBuf {
    root().join("deploy/messaging-stream.yaml")
}

/// `.local/deploy-tools/bin`: cfn-lint, aws and their python.
fn tools() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| PathBuf::from(install("install-deploy-tools")))
}

/// A folder of the test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{tag}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// cfn-lint's findings in `file` (errors, warnings and informational ones): its output, empty
/// when it finds nothing; fails the test on a crash of cfn-lint itself.
fn cfn_lint(file: &Path) -> String {
    let out = Command::new(tools().join("cfn-lint")).args(["--include-checks", "I", "--"]).arg(file).stdin(Stdio::null()).output().expect("cfn-lint");
    // cfn-lint exits 0 when it finds nothing, and 2, 4 or 8 (or their sum) for its findings.
    assert!(out.status.code().is_some_and(|c| c < 16), "cfn-lint failed on {}: {}", file.display(), stderr(&out));
    stdout(&out)
}

#[test]
fn cfn_lint_finds_nothing_in_the_template() {
    let findings = cfn_lint(&template());
    assert_eq!(findings, "", "cfn-lint's findings in deploy/messaging-stream.yaml:\n{findings}");
}

/// The region of the tests' stacks (not moto's default, so that a region that is not passed on
/// shows up as a missing resource).
const REGION: &str = "ca-central-1";
const BUCKET: &str = "lambda-zips";

/// An environment for the AWS CLI and bin/lambda/deploy aimed at `moto`: dummy keys, the region,
/// a home without AWS files, and the deploy tools first on PATH.
fn on_moto(c: &mut Command, moto: &Moto, home: &Path) {
    scrub_env(c, home);
    let path =
        std::env::join_paths(std::iter::once(tools().to_path_buf()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())))
            .expect("PATH");
    c.env("PATH", path)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_REGION", REGION)
        .stdin(Stdio::null());
}

/// `aws ARGS --output json` against moto: its answer.
fn aws(moto: &Moto, home: &Path, args: &[&str]) -> Value {
    let mut c = Command::new(tools().join("aws"));
    on_moto(&mut c, moto, home);
    // The flag too: the CLI takes AWS_ENDPOINT_URL for most services, but SQS went to AWS's own
    // endpoint with it alone.
    let out = c.args(args).args(["--output", "json", "--endpoint-url", &moto.endpoint]).output().expect("aws");
    assert!(out.status.success(), "aws {}: {}", args.join(" "), stderr(&out));
    let text = stdout(&out);
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("aws {}: not JSON ({e}): {text}", args.join(" ")))
}

/// `bin/lambda/deploy ARGS` against moto, its packaged template kept under `target`.
fn deploy(moto: &Moto, home: &Path, target: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(root().join("bin/lambda/deploy"));
    on_moto(&mut c, moto, home);
    c.env("CARGO_TARGET_DIR", target).args(args).output().expect("bin/lambda/deploy")
}

/// A policy document as IAM returns it: AWS gives JSON (which the CLI decodes); moto gives the
/// Python text of a dict for the policies that its CloudFormation created, read here by Python.
fn policy_document(v: &Value) -> Value {
    let Some(text) = v.as_str() else {
        return v.clone();
    };
    if let Ok(json) = serde_json::from_str(text) {
        return json;
    }
    let out = Command::new(tools().join("python"))
        .args(["-c", "import ast, json, sys; print(json.dumps(ast.literal_eval(sys.stdin.read())))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut p| {
            use std::io::Write;
            p.stdin.take().unwrap().write_all(text.as_bytes())?;
            p.wait_with_output()
        })
        .expect("python");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("a policy document ({e}): {text}"))
}

/// A statement's actions or resources as a set (IAM takes a string or a list of strings).
fn set_of(v: &Value) -> BTreeSet<String> {
    match v {
        Value::String(s) => BTreeSet::from([s.clone()]),
        Value::Array(a) => a.iter().map(|s| s.as_str().expect("a string").to_string()).collect(),
        other => panic!("not a string or a list: {other}"),
    }
}

fn strings(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The release build of the Lambda, zipped as `bootstrap` (moto keeps the code and never runs it:
/// the zig-linked zip of bin/lambda/build is checked, and run, by `lambda`).
fn zip_of_the_bootstrap(dir: &Path) -> PathBuf {
    std::fs::copy(bin("messaging-stream"), dir.join("bootstrap")).expect("copy the bootstrap");
    let out =
        Command::new(tools().join("python")).args(["-m", "zipfile", "-c", "bootstrap.zip", "bootstrap"]).current_dir(dir).output().expect("python");
    assert!(out.status.success(), "zip: {}", stderr(&out));
    dir.join("bootstrap.zip")
}

#[test]
fn bin_lambda_deploy_refuses_without_a_bucket() {
    let out = Command::new(root().join("bin/lambda/deploy")).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: --bucket is required"), "{}", stderr(&out));
    let out = Command::new(root().join("bin/lambda/deploy")).args(["--bucket", "b", "--stak", "x"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: unknown argument '--stak'"), "{}", stderr(&out));
}

#[test]
fn bin_lambda_deploy_creates_the_stack_on_moto_with_the_templates_settings() {
    let moto = Moto::start();
    let dir = TempDir::new("deploy");
    let home = dir.0.join("home");
    let target = dir.0.join("target");
    std::fs::create_dir(&home).unwrap();
    let zip = zip_of_the_bootstrap(&dir.0);
    let zip_arg = zip.to_str().unwrap();

    // No table yet: the deploy stops before it uploads anything, and says what to do.
    let out = deploy(&moto, &home, &target, &["--bucket", BUCKET, "--zip", zip_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let last = stderr(&out).lines().last().unwrap_or_default().to_string();
    assert_eq!(last, "error: cannot describe the table cruddur-messages (the AWS CLI's message is above): if it does not exist, create it with ./bin/ddb/schema-load prod");

    // The table is schema-load's, on moto as on AWS.
    let out = clean_cmd("schema-load").args(["--endpoint-url", &moto.endpoint, "--region", REGION]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "schema-load on moto: {}", stderr(&out));
    let stream = aws(&moto, &home, &["dynamodb", "describe-table", "--table-name", "cruddur-messages"])["Table"]["LatestStreamArn"]
        .as_str()
        .expect("a stream")
        .to_string();
    aws(&moto, &home, &["s3api", "create-bucket", "--bucket", BUCKET, "--create-bucket-configuration", &format!("LocationConstraint={REGION}")]);

    let out = deploy(&moto, &home, &target, &["--bucket", BUCKET, "--zip", zip_arg]);
    assert!(out.status.success(), "bin/lambda/deploy: {}", stderr(&out));
    let printed = stdout(&out);
    eprintln!("bin/lambda/deploy printed:\n{printed}");
    let line =
        |prefix: &str| printed.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no '{prefix}' in:\n{printed}")).to_string();
    let (uuid, queue_url, packaged) = (line("event source mapping: "), line("given-up records: "), line("packaged template: "));

    // What CloudFormation was given: the zip in the bucket, and nothing for cfn-lint to say.
    let packaged = PathBuf::from(packaged);
    assert_eq!(packaged, target.join("lambda/messaging-stream/messaging-stream.packaged.yaml"));
    let text = std::fs::read_to_string(&packaged).unwrap();
    assert!(text.contains(&format!("S3Bucket: {BUCKET}")) && !text.contains("bootstrap.zip"), "{text}");
    assert_eq!(cfn_lint(&packaged), "", "cfn-lint's findings in the packaged template");
    let objects = aws(&moto, &home, &["s3api", "list-objects-v2", "--bucket", BUCKET]);
    let size = objects["Contents"][0]["Size"].as_u64().expect("the zip in the bucket");
    assert_eq!(size, std::fs::metadata(&zip).unwrap().len());

    let mapping = aws(&moto, &home, &["lambda", "get-event-source-mapping", "--uuid", &uuid]);
    eprintln!("the event source mapping, as moto returns it:\n{}", serde_json::to_string_pretty(&mapping).unwrap());
    let queue = aws(&moto, &home, &["sqs", "get-queue-attributes", "--queue-url", &queue_url, "--attribute-names", "All"])["Attributes"].clone();
    let queue_arn = queue["QueueArn"].as_str().expect("QueueArn").to_string();
    assert_eq!(mapping["EventSourceArn"], stream.as_str());
    assert_eq!(mapping["StartingPosition"], "LATEST");
    assert_eq!(mapping["BatchSize"], 100);
    assert_eq!(mapping["FunctionResponseTypes"], serde_json::json!(["ReportBatchItemFailures"]));
    assert_eq!(mapping["BisectBatchOnFunctionError"], true);
    assert_eq!(mapping["MaximumRetryAttempts"], 10);
    assert_eq!(mapping["MaximumRecordAgeInSeconds"], 3600);
    assert_eq!(mapping["DestinationConfig"]["OnFailure"]["Destination"], queue_arn.as_str());
    let filters = mapping["FilterCriteria"]["Filters"].as_array().expect("filters");
    assert_eq!(filters.len(), 1, "{mapping}");
    let pattern: Value = serde_json::from_str(filters[0]["Pattern"].as_str().unwrap()).expect("the pattern is JSON");
    assert_eq!(pattern, serde_json::json!({"eventName": ["INSERT"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "MSG#"}]}}}}));
    assert_eq!(queue["MessageRetentionPeriod"], "1209600", "{queue}");

    let function = aws(&moto, &home, &["lambda", "get-function-configuration", "--function-name", "messaging-stream"]);
    assert_eq!(mapping["FunctionArn"], function["FunctionArn"]);
    assert_eq!(function["Runtime"], "provided.al2023");
    assert_eq!(function["Handler"], "bootstrap");
    assert_eq!(function["Architectures"], serde_json::json!(["x86_64"]));
    assert_eq!(function["Environment"]["Variables"], serde_json::json!({"DDB_MESSAGE_TABLE": "cruddur-messages"}));
    assert_eq!(function["CodeSize"].as_u64(), Some(size));

    let groups = aws(&moto, &home, &["logs", "describe-log-groups", "--log-group-name-prefix", "/aws/lambda/messaging-stream"]);
    let group = &groups["logGroups"][0];
    assert_eq!((group["logGroupName"].as_str(), group["retentionInDays"].as_u64()), (Some("/aws/lambda/messaging-stream"), Some(14)), "{groups}");

    let role_name = function["Role"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let role = aws(&moto, &home, &["iam", "get-role", "--role-name", &role_name])["Role"].clone();
    let trust = policy_document(&role["AssumeRolePolicyDocument"]);
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], "lambda.amazonaws.com", "{trust}");
    assert_eq!(trust["Statement"][0]["Action"], "sts:AssumeRole", "{trust}");
    let names = aws(&moto, &home, &["iam", "list-role-policies", "--role-name", &role_name])["PolicyNames"].clone();
    assert_eq!(names, serde_json::json!(["messaging-stream"]));
    assert_eq!(aws(&moto, &home, &["iam", "list-attached-role-policies", "--role-name", &role_name])["AttachedPolicies"], serde_json::json!([]));
    let policy = aws(&moto, &home, &["iam", "get-role-policy", "--role-name", &role_name, "--policy-name", "messaging-stream"]);
    let policy = policy_document(&policy["PolicyDocument"]);
    let table = format!("arn:aws:dynamodb:{REGION}:123456789012:table/cruddur-messages");
    // Least privilege: exactly these actions on exactly these resources, and nothing else.
    let mut granted: Vec<(BTreeSet<String>, BTreeSet<String>)> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .map(|s| {
            assert_eq!(s["Effect"], "Allow", "{s}");
            (set_of(&s["Action"]), set_of(&s["Resource"]))
        })
        .collect();
    granted.sort();
    let mut expected = vec![
        (
            strings(&["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Query"]),
            strings(&[&table, &format!("{table}/index/message-group-sk-index")]),
        ),
        (strings(&["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]), strings(&[&stream])),
        (strings(&["dynamodb:ListStreams"]), strings(&["*"])),
        (strings(&["sqs:SendMessage"]), strings(&[&queue_arn])),
        (strings(&["logs:CreateLogStream", "logs:PutLogEvents"]), strings(&[group["logGroupArn"].as_str().expect("logGroupArn")])),
    ];
    expected.sort();
    assert_eq!(granted, expected, "the role's policy: {policy}");
}
