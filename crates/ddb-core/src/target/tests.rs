//! Unit tests of target resolution.
use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

#[test]
fn regions_are_checked() {
    for ok in ["us-east-1", "ca-central-1", "us-gov-west-1", "ap-southeast-2"] {
        assert!(check_region(ok, Origin::Var("test")).is_ok(), "{ok}");
    }
    for bad in ["", "us east 1", "US-EAST-1", "useast1", "us-east-", "us-east-x", "1s-east-1"] {
        assert!(check_region(bad, Origin::Var("test")).unwrap_err().to_string().contains("malformed AWS region"), "{bad}");
    }
}

#[test]
fn default_is_dynamodb_local() {
    let t = resolve(Service::DynamoDb, false, None, env_of(&[])).unwrap();
    assert_eq!(t, Target::Endpoint("http://localhost:8000".into()));
}

#[test]
fn prod_means_aws() {
    assert_eq!(resolve(Service::DynamoDb, true, None, env_of(&[])).unwrap(), Target::Aws);
    // A local endpoint variable left in the shell does not turn prod into local.
    let env = env_of(&[("AWS_ENDPOINT_URL", "http://localhost:9")]);
    assert_eq!(resolve(Service::DynamoDb, true, None, env).unwrap(), Target::Aws);
}

#[test]
fn flag_beats_everything() {
    let env = env_of(&[("AWS_ENDPOINT_URL", "http://a:1"), ("AWS_ENDPOINT_URL_DYNAMODB", "http://b:2")]);
    let t = resolve(Service::DynamoDb, true, Some("http://c:3/"), env).unwrap();
    assert_eq!(t, Target::Endpoint("http://c:3".into()));
}

#[test]
fn service_variable_beats_generic_one() {
    let env = env_of(&[("AWS_ENDPOINT_URL", "http://a:1"), ("AWS_ENDPOINT_URL_DYNAMODB", "http://b:2")]);
    assert_eq!(resolve(Service::DynamoDb, false, None, &env).unwrap(), Target::Endpoint("http://b:2".into()));
    // The DynamoDB variable is not Cognito's.
    assert_eq!(resolve(Service::Cognito, false, None, &env).unwrap(), Target::Endpoint("http://a:1".into()));
}

#[test]
fn generic_variable_and_empty_values() {
    let env = env_of(&[("AWS_ENDPOINT_URL", "http://a:1"), ("AWS_ENDPOINT_URL_DYNAMODB", "")]);
    assert_eq!(resolve(Service::DynamoDb, false, None, env).unwrap(), Target::Endpoint("http://a:1".into()));
}

#[test]
fn cognito_defaults_to_aws() {
    assert_eq!(resolve(Service::Cognito, false, None, env_of(&[])).unwrap(), Target::Aws);
    let env = env_of(&[("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", "http://127.0.0.1:5000")]);
    assert_eq!(resolve(Service::Cognito, false, None, env).unwrap(), Target::Endpoint("http://127.0.0.1:5000".into()));
}

#[test]
fn malformed_endpoints_are_input_errors() {
    for bad in ["localhost:8000", "ftp://x", "http://", "not a url", ""] {
        let err = resolve(Service::DynamoDb, false, Some(bad), env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("malformed endpoint URL"), "{bad}: {err}");
    }
    let err = resolve(Service::DynamoDb, false, None, env_of(&[("AWS_ENDPOINT_URL", "nope")])).unwrap_err();
    assert!(err.to_string().contains("AWS_ENDPOINT_URL"), "{err}");
    // A flag's bad value is a usage error; a variable's is bad input.
    assert_eq!(err.kind(), crate::ErrorKind::Input);
    assert_eq!(resolve(Service::DynamoDb, false, Some("ftp://x"), env_of(&[])).unwrap_err().kind(), crate::ErrorKind::Usage);
    assert_eq!(check_region("us east 1", Origin::Flag("--region")).unwrap_err().kind(), crate::ErrorKind::Usage);
    assert_eq!(check_region("us east 1", Origin::Var("AWS_REGION")).unwrap_err().kind(), crate::ErrorKind::Input);
}

#[test]
fn settings_check_regions_and_warn() {
    let bad = Settings { region: Some("us east 1".into()), ..Settings::default() };
    assert!(bad.resolve_in(Service::DynamoDb, env_of(&[])).unwrap_err().to_string().contains("--region"));
    let err = Settings::default().resolve_in(Service::DynamoDb, env_of(&[("AWS_REGION", "EU")])).unwrap_err();
    assert!(err.to_string().contains("AWS_REGION"), "{err}");
    let prod = Settings { prod: true, ..Settings::default() };
    let r = prod.resolve_in(Service::DynamoDb, env_of(&[("AWS_ENDPOINT_URL", "http://localhost:9")])).unwrap();
    assert_eq!(r.target, Target::Aws);
    assert_eq!(r.warnings, ["note: AWS_ENDPOINT_URL is set; the AWS SDK sends prod requests there"]);
    let third = Settings { endpoint_url: Some("http://evil.example".into()), ..Settings::default() };
    assert_eq!(third.resolve_in(Service::DynamoDb, env_of(&[])).unwrap().warnings.len(), 1);
}

#[test]
fn lambda_goes_to_aws_unless_an_endpoint_is_set() {
    assert_eq!(in_lambda(env_of(&[])).unwrap().target, Target::Aws);
    let local = in_lambda(env_of(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:8001"), ("AWS_REGION", "eu-west-1")])).unwrap();
    assert_eq!(local.target, Target::Endpoint("http://127.0.0.1:8001".into()));
    assert_eq!((local.region.as_deref(), local.test_credentials, &local.profiles), (Some("eu-west-1"), true, &None));
    assert!(Target::Endpoint("http://[::1]:8000".into()).is_local() && !Target::Aws.is_local());
}

/// DDB_LOCAL_TIMEOUT in the function's environment, as in the scripts': a local endpoint waits
/// that long, AWS keeps its own patience, and a value that is not a number of seconds fails.
#[test]
fn lambda_honours_the_local_timeout_for_a_local_endpoint_only() {
    let local = in_lambda(env_of(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:8001"), ("DDB_LOCAL_TIMEOUT", "5")])).unwrap();
    assert_eq!(local.patience, Patience { operation: std::time::Duration::from_secs(5), ..Patience::LOCAL });
    assert_eq!(in_lambda(env_of(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:8001")])).unwrap().patience, Patience::LOCAL);
    assert_eq!(in_lambda(env_of(&[("DDB_LOCAL_TIMEOUT", "5")])).unwrap().patience, Patience::REMOTE);
    let bad = in_lambda(env_of(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:8001"), ("DDB_LOCAL_TIMEOUT", "soon")])).unwrap_err();
    assert!(bad.to_string().contains("DDB_LOCAL_TIMEOUT=\"soon\" is not a number of seconds"), "{bad}");
}

#[test]
fn warns_only_for_third_party_endpoints() {
    assert!(endpoint_warning(&Target::Endpoint("http://localhost:8000".into())).is_none());
    assert!(endpoint_warning(&Target::Endpoint("http://127.0.0.1:8000".into())).is_none());
    assert!(endpoint_warning(&Target::Endpoint("https://dynamodb.eu-west-1.amazonaws.com".into())).is_none());
    assert!(endpoint_warning(&Target::Aws).is_none());
    assert!(endpoint_warning(&Target::Endpoint("http://evil.example:80".into())).is_some());
}

#[test]
fn the_sdk_setup_comes_from_the_environment_passed_in() {
    let local = Settings::default().resolve_in(Service::DynamoDb, env_of(&[("AWS_DEFAULT_REGION", "eu-west-2")])).unwrap();
    assert_eq!((local.region.as_deref(), local.test_credentials, &local.profiles), (Some("eu-west-2"), true, &None));
    let keys = Settings::default().resolve_in(Service::DynamoDb, env_of(&[("AWS_ACCESS_KEY_ID", "AKIA")])).unwrap();
    assert_eq!((keys.region.as_deref(), keys.test_credentials), (Some(DEFAULT_LOCAL_REGION), false));
    // prod: the region and the credentials are the SDK chain's; the files it reads are checked.
    let env = env_of(&[("HOME", "/home/u"), ("AWS_PROFILE", "dev"), ("AWS_REGION", "ca-central-1")]);
    let prod = Settings { prod: true, ..Settings::default() }.resolve_in(Service::DynamoDb, env).unwrap();
    assert_eq!((prod.region, prod.test_credentials), (None, false));
    let profiles = prod.profiles.unwrap();
    assert_eq!(profiles.selected, Some(("dev".to_string(), Origin::Var("AWS_PROFILE"))));
    assert_eq!(profiles.vars, [("HOME".to_string(), "/home/u".to_string())]);
    // Keys in the environment and no profile named: the files do not matter.
    let env = env_of(&[("AWS_ACCESS_KEY_ID", "AKIA")]);
    assert_eq!(Settings { prod: true, ..Settings::default() }.resolve_in(Service::DynamoDb, env).unwrap().profiles, None);
    // --profile beats AWS_PROFILE, and is a flag.
    let flag = Settings { profile: Some("ops".into()), ..Settings::default() };
    let r = flag.resolve_in(Service::DynamoDb, env_of(&[("AWS_PROFILE", "dev")])).unwrap();
    assert_eq!(r.profiles.unwrap().selected, Some(("ops".to_string(), Origin::Flag("--profile"))));
    assert!(!r.test_credentials);
}

#[test]
fn passwords_in_endpoints_are_redacted_wherever_a_target_is_printed() {
    assert_eq!(redact_url("http://u:hunter2@127.0.0.1:8000"), "http://u:***@127.0.0.1:8000");
    assert_eq!(redact_url("https://u:p@ss@h/x?y=@"), "https://u:***@h/x?y=@");
    assert_eq!(redact_url("http://u@h:1"), "http://u@h:1");
    assert_eq!(redact_url("http://h:1/a@b"), "http://h:1/a@b");
    assert_eq!(redact_url("u:p@h"), "u:p@h");
    assert_eq!(Target::Endpoint("http://u:hunter2@evil.example".into()).label(), "http://u:***@evil.example");
    let third = Settings { endpoint_url: Some("http://u:hunter2@evil.example".into()), ..Settings::default() };
    let r = third.resolve_in(Service::DynamoDb, env_of(&[])).unwrap();
    assert!(r.warnings[0].contains("u:***@evil.example") && !r.warnings[0].contains("hunter2"), "{:?}", r.warnings);
    let err = check_endpoint("ftp://u:hunter2@h", Origin::Flag("--endpoint-url")).unwrap_err().to_string();
    assert!(err.contains("ftp://u:***@h") && !err.contains("hunter2"), "{err}");
}

#[test]
fn patience_goes_by_the_target() {
    assert_eq!(Target::Endpoint("http://127.0.0.1:8000".into()).patience(), Patience::LOCAL);
    assert_eq!(Target::Endpoint("https://dynamodb.us-east-1.amazonaws.com".into()).patience(), Patience::REMOTE);
    assert_eq!(Target::Aws.patience(), Patience::REMOTE);
}
