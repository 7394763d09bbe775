//! The AWS side's edges: a malformed `~/.aws/config`, a profile that is not there, an endpoint
//! URL with a password in it. (More such cases are rows of docs/bad-inputs.json.)

use e2e::*;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Far above any expected run: only a hang reaches it.
const WATCHDOG: Duration = Duration::from_secs(60);

/// A HOME of the test's own with `config` as its `.aws/config`; removed when dropped.
struct Home(PathBuf);

impl Home {
    fn with_config(config: &str) -> Self {
        let home = std::env::temp_dir().join(format!("aws-home-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(home.join(".aws")).unwrap();
        std::fs::write(home.join(".aws/config"), config).unwrap();
        Home(home)
    }

    /// Binary `name` with `prod`, this HOME, a region and no instance metadata; under prod the
    /// SDK honours AWS_ENDPOINT_URL, so `trap` (which nothing must reach) stands in for AWS.
    fn prod(&self, name: &str, trap: &TcpListener) -> Command {
        let mut c = clean_cmd(name);
        c.arg("prod")
            .env("HOME", &self.0)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", format!("http://{}", trap.local_addr().unwrap()));
        c
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn trap() -> TcpListener {
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    trap
}

/// The last line of stderr (the first may be prod's note about AWS_ENDPOINT_URL).
fn last_line(err: &str) -> &str {
    err.lines().last().unwrap_or_default()
}

#[test]
fn a_malformed_aws_config_is_named_with_its_line_not_called_missing_credentials() {
    let home = Home::with_config("[default\nregion = us-east-1\n");
    let trap = trap();
    for name in ["list-tables", "scan", "schema-load"] {
        let out = run_watched(&mut home.prod(name, &trap), WATCHDOG);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        let last = last_line(&err);
        let file = format!("error parsing {}/.aws/config on line 1: Profile definition must end with ']'", home.0.display());
        assert!(last.starts_with("error: cannot use the AWS config files") && last.contains(&file), "{name}: {err}");
        assert!(last.contains("fix the file") && !err.contains("no AWS credentials found"), "{name}: {err}");
    }
    assert!(trap.accept().is_err(), "a request was sent");
}

#[test]
fn a_profile_that_is_not_there_is_named_with_the_ones_that_are() {
    let home = Home::with_config("[default]\nregion = us-east-1\n[profile dev]\nregion = eu-west-1\n");
    let trap = trap();
    // By flag: a usage error (2).
    let out = run_watched(home.prod("list-tables", &trap).args(["--profile", "nonexistent"]), WATCHDOG);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let want = "error: AWS profile nonexistent (from --profile) is not in ~/.aws/config or ~/.aws/credentials (it has default, dev): create it with `aws configure --profile nonexistent`";
    assert!(last_line(&err).starts_with(want), "{err}");
    // By variable: bad input (1), and how to unset it.
    let out = run_watched(home.prod("scan", &trap).env("AWS_PROFILE", "nonexistent"), WATCHDOG);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(last_line(&err).contains("(from AWS_PROFILE)") && err.ends_with("or unset AWS_PROFILE\n"), "{err}");
    // A profile that is there gets through to the credentials (none in it).
    let out = run_watched(home.prod("list-tables", &trap).args(["--profile", "dev"]), WATCHDOG);
    assert!(last_line(&stderr(&out)).contains("no AWS credentials found"), "{}", stderr(&out));
    assert!(trap.accept().is_err(), "a request was sent");
}

#[test]
fn a_password_in_an_endpoint_url_is_never_printed() {
    // 0.0.0.0 is neither loopback by name nor AWS: the third-party warning names it too.
    let url = format!("http://cruddur:hunter2@0.0.0.0:{}", free_port());
    let shown = url.replace("hunter2", "***");
    for name in ["list-tables", "schema-load", "scan"] {
        let out = run_watched(clean_cmd(name).args(["--endpoint-url", &url]), WATCHDOG);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(!err.contains("hunter2") && !stdout(&out).contains("hunter2"), "{name}: {err}");
        assert_eq!(err.lines().next(), Some(format!("warning: endpoint {shown} is neither local nor AWS; requests go there").as_str()), "{name}");
        assert!(last_line(&err).contains(&format!("cannot reach DynamoDB at {shown} (")), "{name}: {err}");
    }
    // Refused before sending, the URL is still redacted.
    let out = run_watched(clean_cmd("scan").args(["--endpoint-url", "ftp://cruddur:hunter2@localhost"]), WATCHDOG);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ftp://cruddur:***@localhost") && !stderr(&out).contains("hunter2"), "{}", stderr(&out));
}
