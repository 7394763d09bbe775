use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, StreamViewType};
use e2e::*;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn schema_load_creates_exactly_the_spec_table_and_leaves_it_alone_after() {
    let t = TestTable::create(DynamoLocal::shared(), "schema");
    let d = block_on(t.client().describe_table().table_name(&t.name).send()).unwrap().table.unwrap();
    assert_eq!(d.table_status().unwrap().as_str(), "ACTIVE");
    let keys: Vec<_> = d.key_schema().iter().map(|k| (k.attribute_name(), k.key_type().as_str())).collect();
    assert_eq!(keys, [("pk", "HASH"), ("sk", "RANGE")]);
    let mut attrs: Vec<_> = d.attribute_definitions().iter().map(|a| (a.attribute_name(), a.attribute_type().as_str())).collect();
    attrs.sort();
    assert_eq!(attrs, [("message_group_uuid", "S"), ("pk", "S"), ("sk", "S")]);
    let gsis = d.global_secondary_indexes();
    assert_eq!(gsis.len(), 1);
    let g = &gsis[0];
    assert_eq!(g.index_name(), Some("message-group-sk-index"));
    let gkeys: Vec<_> = g.key_schema().iter().map(|k| (k.attribute_name(), k.key_type().as_str())).collect();
    assert_eq!(gkeys, [("message_group_uuid", "HASH"), ("sk", "RANGE")]);
    assert_eq!(g.projection().unwrap().projection_type().unwrap().as_str(), "ALL");
    let gt = g.provisioned_throughput().unwrap();
    assert_eq!((gt.read_capacity_units(), gt.write_capacity_units()), (Some(5), Some(5)));
    let pt = d.provisioned_throughput().unwrap();
    assert_eq!((pt.read_capacity_units(), pt.write_capacity_units()), (Some(5), Some(5)));
    let stream = d.stream_specification().unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(stream.stream_view_type(), Some(&StreamViewType::NewImage));
    assert!(d.latest_stream_arn().is_some());

    // A second run: says so, exits 0, changes nothing.
    let created = d.creation_date_time().cloned();
    let again = t.run("schema-load", &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("already exists"), "{}", stdout(&again));
    let d2 = block_on(t.client().describe_table().table_name(&t.name).send()).unwrap().table.unwrap();
    assert_eq!(d2.creation_date_time().cloned(), created);
}

#[test]
fn schema_load_json_and_on_demand() {
    let server = DynamoLocal::shared();
    let t = TestTable::missing(server);
    let out = t.run("schema-load", &["--on-demand", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json output");
    assert_eq!(v["TableName"], t.name.as_str());
    assert_eq!(v["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(v["GlobalSecondaryIndexes"][0]["IndexName"], "message-group-sk-index");
    assert_eq!(v["StreamSpecification"]["StreamViewType"], "NEW_IMAGE");
}

#[test]
fn list_tables_shows_every_page() {
    let server = DynamoLocal::start();
    let ddb = server.ddb("unused");
    let names: Vec<String> = (0..120).map(|i| format!("list-{i:03}")).collect();
    block_on(async {
        for n in &names {
            ddb.client
                .create_table()
                .table_name(n)
                .attribute_definitions(AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap())
                .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await
                .unwrap();
        }
    });
    let t = TestTable::missing(&server);
    let table = t.run("list-tables", &[]);
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    let shown: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix('|')?.strip_suffix('|')).map(str::trim).collect();
    assert_eq!(shown[0], "ListTables");
    assert_eq!(&shown[1..], names.iter().map(String::as_str).collect::<Vec<_>>().as_slice());

    let json = t.run("list-tables", &["--output", "json"]);
    let listed: Vec<String> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(listed, names);
    let text = t.run("list-tables", &["--output", "text"]);
    assert_eq!(stdout(&text).lines().count(), 120);
}

#[test]
fn scan_reads_every_page_plain_and_parallel() {
    let (t, _server) = TestTable::on_own_server("scan");
    // 5,000 items of about 1 KB: about 5 MB, five times the 1 MB page.
    let body = "x".repeat(1000);
    let items = (0..5000).map(|i| {
        let item = std::collections::HashMap::from([
            ("pk".to_string(), aws_sdk_dynamodb::types::AttributeValue::S(format!("P#{}", i % 50))),
            ("sk".to_string(), aws_sdk_dynamodb::types::AttributeValue::S(format!("{i:06}"))),
            ("body".to_string(), aws_sdk_dynamodb::types::AttributeValue::S(body.clone())),
        ]);
        ddb_core::write::put(item)
    });
    let written = t.write(items);
    assert_eq!(written, 5000);

    for args in [&[][..], &["--segments", "4"][..]] {
        let out = t.run("scan", args);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut seen = HashSet::new();
        for line in stdout(&out).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["body"].as_str().unwrap().len(), 1000);
            assert!(seen.insert(format!("{}|{}", v["pk"], v["sk"])), "duplicate item {line:.40}");
        }
        assert_eq!(seen.len(), 5000, "scan {args:?}");
        assert!(stderr(&out).contains("5000 items"), "{}", stderr(&out));
    }

    let typed = t.run("scan", &["--limit", "3", "--output", "dynamodb-json"]);
    let lines: Vec<serde_json::Value> = stdout(&typed).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0]["pk"]["S"].as_str().unwrap().starts_with("P#"));

    // A reader that goes away (`| head -1`) ends the scan quietly.
    let mut child = t.cmd("scan").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with('{'));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "closed pipe: {:?} {}", out.status, stderr(&out));
    assert!(!stderr(&out).contains("error"), "{}", stderr(&out));
}

#[test]
fn drop_speaks_like_the_course_and_guards_prod() {
    let server = DynamoLocal::shared();
    let none = clean_cmd("drop").output().unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert_eq!(stdout(&none), "No TABLE_NAME argument supplied eg ./bin/ddb/drop cruddur-messages prod \n");

    let t = TestTable::create(server, "drop");
    let out = t.cmd("drop").arg(&t.name).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with(&format!("deleting table: {}\n", t.name)));
    assert!(block_on(t.client().describe_table().table_name(&t.name).send()).is_err(), "table still there");

    let missing = t.cmd("drop").arg(&t.name).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("does not exist") && stderr(&missing).contains("nothing to delete"), "{}", stderr(&missing));

    // The name forgotten: `prod` is not taken for a table name.
    let forgot = t.cmd("drop").arg("prod").output().unwrap();
    assert_eq!(forgot.status.code(), Some(2), "{}", stderr(&forgot));
    assert!(stderr(&forgot).contains("no TABLE_NAME before prod"), "{}", stderr(&forgot));
    // `prod` with --endpoint-url goes to that endpoint, not AWS: nothing to confirm.
    let local = TestTable::create(server, "droplocal");
    let out = clean_cmd("drop").args([&local.name, "prod", "--endpoint-url", &local.endpoint]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(block_on(local.client().describe_table().table_name(&local.name).send()).is_err(), "table still there");

    // prod without --yes and without a terminal: refused, and nothing is sent anywhere. The
    // SDK would honour AWS_ENDPOINT_URL under prod, so point it at a listener and check that
    // nobody knocked.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let trap = format!("http://{}", listener.local_addr().unwrap());
    let refused = clean_cmd("drop")
        .args(["cruddur-messages", "prod"])
        .env("AWS_ENDPOINT_URL", &trap)
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    assert!(!stdout(&refused).contains("deleting"));
    assert!(listener.accept().is_err(), "drop prod sent a request without confirmation");
}

#[test]
fn nothing_listening_is_one_clear_line_within_seconds() {
    let port = free_port();
    for bin_name in ["list-tables", "schema-load", "scan"] {
        let started = Instant::now();
        let out = clean_cmd(bin_name).args(["--endpoint-url", &format!("http://127.0.0.1:{port}")]).output().unwrap();
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(1), "{bin_name}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{bin_name}: {err}");
        assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("./bin/local/up"), "{bin_name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        // Far below the retries of a 10 s timeout, far above a loaded machine's process start.
        assert!(took < Duration::from_secs(20), "{bin_name} took {took:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for (bin_name, args) in [
        ("list-tables", &["--frobnicate"][..]),
        ("scan", &["--segments", "0"][..]),
        ("schema-load", &["production"][..]),
        ("drop", &["cruddur-messages", "staging"][..]),
    ] {
        let out = clean_cmd(bin_name).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bin_name} {args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("error:") && stderr(&out).contains("--help"), "{}", stderr(&out));
    }
    for bin_name in ["schema-load", "list-tables", "drop", "scan", "seed", "db-setup"] {
        let out = clean_cmd(bin_name).arg("--help").output().unwrap();
        assert!(out.status.success() && stdout(&out).contains("Usage"), "{bin_name} --help");
    }
}

#[test]
fn bad_table_names_and_endpoints_are_refused_before_sending() {
    // A malformed --endpoint-url is a usage error (2); table names exit 1 (the name may come from
    // DDB_MESSAGE_TABLE as well as from --table).
    for (args, want, code) in [
        (vec!["--table", "a b"], "invalid table name", 1),
        (vec!["--table", "ab"], "3 to 255", 1),
        (vec!["--endpoint-url", "localhost:8000"], "malformed endpoint URL", 2),
    ] {
        let out = clean_cmd("scan").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    let long = "x".repeat(256);
    let out = clean_cmd("schema-load").args(["--table", &long]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("has 256"), "{}", stderr(&out));
}

#[test]
fn schema_load_json_is_json_when_the_table_exists() {
    let t = TestTable::create(DynamoLocal::shared(), "jsonagain");
    let out = t.run("schema-load", &["--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)));
    assert_eq!((v["TableName"].as_str(), v["existed"].as_bool()), (Some(t.name.as_str()), Some(true)), "{v}");
    assert_eq!(v["differences"], serde_json::json!([]));
    assert_eq!(v["KeySchema"][0]["AttributeName"], "pk");
    // A table it creates says so too.
    let fresh = TestTable::missing(DynamoLocal::shared());
    let out = fresh.run("schema-load", &["--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json output");
    assert_eq!(v["existed"], false);
}

/// A table named `t.name` with key `id` only: no sort key, no index, no stream.
fn create_foreign_table(t: &TestTable) {
    let id = || KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap();
    let attr = AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().unwrap();
    block_on(
        t.client().create_table().table_name(&t.name).key_schema(id()).attribute_definitions(attr).billing_mode(BillingMode::PayPerRequest).send(),
    )
    .unwrap();
}

#[test]
fn a_table_of_another_shape_is_named_by_schema_load_and_the_other_scripts_point_there() {
    let server = DynamoLocal::shared();
    let t = TestTable::missing(server);
    create_foreign_table(&t);
    let out = t.run("schema-load", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    for want in [
        format!("error: table {} at {} is not shaped as ours", t.name, t.endpoint),
        "its keys are id (HASH), ours pk (HASH), sk (RANGE)".into(),
        "it has no index message-group-sk-index".into(),
        "it has no stream, ours NEW_IMAGE".into(),
        format!("drop it (./bin/ddb/drop {})", t.name),
    ] {
        assert!(err.contains(&want), "{err:?} lacks {want:?}");
    }
    assert!(!stdout(&out).contains("left as it is"), "{}", stdout(&out));
    // --output json: the description on stdout all the same, and the error.
    let out = t.run("schema-load", &["--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json output");
    assert_eq!((v["existed"].as_bool(), v["differences"].as_array().map(Vec::len)), (Some(true), Some(3)), "{v}");
    // The scripts that write or read rows point at schema-load instead of a raw ValidationException.
    let db = TestDb::create();
    for (name, args) in [("seed", &[][..]), ("get-conversations", &[][..]), ("create-conversation", &["yaya2devops", "bayko", "hi"][..])] {
        let out = t.run_db(name, &db, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains("the table's shape differs from ours: run ./bin/ddb/schema-load to see how"), "{name}: {err}");
    }
}
