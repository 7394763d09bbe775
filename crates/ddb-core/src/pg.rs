//! Postgres: the course's `users` table, which the seed and the conversation scripts read and
//! the Cognito sync updates.

use crate::error::{quoted, root_cause, Error, Result};
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, Config, Row};

/// The course's variable for the database URL.
pub const CONNECTION_ENV: &str = "CONNECTION_URL";
/// The URL used when [`CONNECTION_ENV`] is not set.
pub const DEFAULT_URL: &str = "postgresql://postgres@127.0.0.1:5432/cruddur";

/// The course's `users` table (SPEC.md), created only where it is missing. The same file
/// initialises the Postgres of docker-compose.yml.
pub const SCHEMA: &str = include_str!("../../../db/schema.sql");
/// The course's seed users (yaya2devops, bayko), added only where missing.
pub const SEED_USERS: &str = include_str!("../../../db/seed.sql");

pub use crate::records::User;

/// The URL with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    if let Ok(mut u) = url::Url::parse(url) {
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        if u.query().is_some_and(|q| q.contains("password=")) {
            let q: Vec<String> = u.query_pairs().map(|(k, v)| if k == "password" { format!("{k}=***") } else { format!("{k}={v}") }).collect();
            u.set_query(Some(&q.join("&")));
        }
        return u.to_string();
    }
    // key=value form: host=... password=secret
    url.split_whitespace()
        .map(|kv| if kv.starts_with("password=") { "password=***".to_string() } else { kv.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

mod tls;

/// How long connecting may take, the TLS handshake and authentication included: a server that
/// takes the connection and never answers must not hold a script.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one statement of the toolkit may take: they touch a few rows, or create a database.
/// Postgres itself ends a statement that runs longer (the session's `statement_timeout`).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a statement may wait for a lock that another session holds (the session's
/// `lock_timeout`): shorter than [`QUERY_TIMEOUT`], so that a lock held by someone else is said
/// as such (a session of the app's inside a transaction, a `SELECT ... FOR UPDATE` left open).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the client waits for an answer to a statement: longer than [`QUERY_TIMEOUT`], so
/// that Postgres's own, clearer answer comes first; this one is for a server that answers
/// nothing at all.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(QUERY_TIMEOUT.as_secs() + 5);

/// A connection to the database, with its URL (password as `***`) for messages. Every
/// statement on it is bounded twice: by Postgres (the session's `lock_timeout` and
/// `statement_timeout`, set when it connects) and by the client ([`Pg::bounded`]).
pub struct Pg {
    pub(crate) client: Client,
    url: String,
}

impl Pg {
    /// The URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The client, for statements of the caller's own (tests); the session's timeouts bound them.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs one statement (`what`, for messages) with the client's limit, mapping its error.
    pub async fn bounded<T>(&self, what: &str, query: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Result<T> {
        bounded(&self.url, what, query).await
    }
}

fn pg_error(url: &str, what: Option<&str>, e: tokio_postgres::Error) -> Error {
    let cause = root_cause(&e);
    let mut waited = None;
    let message = if let Some(db) = e.as_db_error() {
        let doing = what.map_or(String::new(), |w| format!("{w}: "));
        match db.code().code() {
            "3D000" => format!("{}: run ./bin/local/up to create it, or set CONNECTION_URL", db.message()),
            "28P01" | "28000" => format!("{}: check the user and password in CONNECTION_URL", db.message()),
            "55P03" => {
                waited = Some(LOCK_TIMEOUT);
                format!(
                    "{doing}waited {} s for a lock that another session holds (lock_timeout): end that session's transaction (pg_stat_activity lists it, often 'idle in transaction'), then run again",
                    LOCK_TIMEOUT.as_secs()
                )
            }
            "57014" if db.message().contains("statement timeout") => {
                waited = Some(QUERY_TIMEOUT);
                format!(
                    "{doing}did not finish within {} s (statement_timeout): the server is busy or a lock is held (pg_stat_activity shows who)",
                    QUERY_TIMEOUT.as_secs()
                )
            }
            // A column or table of another type or name: the app's `users` is not the course's.
            "42703" | "42804" => format!(
                "{doing}{}: the users table is not shaped as the course's (db/schema.sql): fix or drop it, or set CONNECTION_URL to another database",
                db.message()
            ),
            _ => format!("{doing}{}", db.message()),
        }
    } else if let Some(tls) = tls_problem(&cause) {
        tls
    } else if e.is_closed() || e.to_string().contains("connect") || e.to_string().contains("timed out") {
        format!(
            "cannot connect ({cause}): start Postgres (./bin/local/up uses the machine's server; `docker compose up -d db` starts one in Docker) or set CONNECTION_URL"
        )
    } else {
        cause
    };
    Error::Postgres { url: redact(url), message, waited, cause: Some(Box::new(e)) }
}

/// An [`Error::Postgres`] of our own finding, with no client error under it.
pub(crate) fn failed(url: &str, message: String) -> Error {
    Error::Postgres { url: redact(url), message, waited: None, cause: None }
}

/// What to do about a failed TLS handshake, phrased from rustls's and tokio-postgres's causes.
fn tls_problem(cause: &str) -> Option<String> {
    if cause.contains("server does not support TLS") {
        Some("the server does not accept TLS, which sslmode asks for: use sslmode=prefer or disable, or turn ssl on in the server".into())
    } else if cause.contains("not valid for name") || cause.contains("NotValidForName") {
        Some(format!(
            "the server's certificate is not for this host name ({cause}): connect by a name that its certificate lists, or use sslmode=verify-ca"
        ))
    } else if cause.contains("invalid peer certificate") {
        Some(format!(
            "the server's certificate is not trusted ({cause}): name its CA with sslrootcert=/path/to/ca.pem in CONNECTION_URL (RDS: the region's certificate bundle), or use sslmode=require to encrypt without checking it"
        ))
    } else {
        None
    }
}

fn parse(url: &str) -> Result<(Config, tls::MakeRustls)> {
    let invalid = |why: String| failed(url, format!("not a valid connection URL ({why}); expected postgresql://user[:password]@host:port/database"));
    let (rest, settings) = tls::split(url).map_err(invalid)?;
    let mut cfg = Config::from_str(&rest).map_err(|e| invalid(root_cause(&e)))?;
    // The session's own limits come first, so that `options` in the URL can still change them.
    let limits = format!("-c lock_timeout={}s -c statement_timeout={}s", LOCK_TIMEOUT.as_secs(), QUERY_TIMEOUT.as_secs());
    let options = match cfg.get_options() {
        Some(own) => format!("{limits} {own}"),
        None => limits,
    };
    cfg.connect_timeout(CONNECT_TIMEOUT).ssl_mode(settings.ssl_mode()).options(options);
    let connector = tls::connector(&settings).map_err(|why| failed(url, format!("cannot set up TLS: {why}")))?;
    Ok((cfg, connector))
}

async fn connect_cfg(url: &str, cfg: &Config, tls: tls::MakeRustls) -> Result<Pg> {
    // tokio-postgres's own connect_timeout covers only the TCP connection; a server that takes
    // it and then says nothing would hold the handshake forever.
    let connecting = tokio::time::timeout(CONNECT_TIMEOUT, cfg.connect(tls)).await.map_err(|_| Error::Postgres {
        url: redact(url),
        message: format!(
            "did not answer within {} s: is that a Postgres server, and is it running? (pg_isready -h {} -p {} tells)",
            CONNECT_TIMEOUT.as_secs(),
            host(cfg),
            cfg.get_ports().first().copied().unwrap_or(5432)
        ),
        waited: Some(CONNECT_TIMEOUT),
        cause: None,
    })?;
    let (client, conn) = connecting.map_err(|e| pg_error(url, None, e))?;
    tokio::spawn(async move {
        // Errors surface on the client's next call; nothing to do here.
        let _ = conn.await;
    });
    Ok(Pg { client, url: redact(url) })
}

fn host(cfg: &Config) -> String {
    match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    }
}

/// Runs one statement (`what`) on the database at `url` with the client's limit, mapping its error
/// (for a statement of a transaction, which holds the client).
pub(crate) async fn bounded<T>(url: &str, what: &str, query: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Result<T> {
    match tokio::time::timeout(ANSWER_TIMEOUT, query).await {
        Ok(result) => result.map_err(|e| pg_error(url, Some(what), e)),
        Err(_) => Err(Error::Postgres {
            url: redact(url),
            message: format!("{what}: no answer within {} s: is the server overloaded or stopped? (pg_isready tells)", ANSWER_TIMEOUT.as_secs()),
            waited: Some(ANSWER_TIMEOUT),
            cause: None,
        }),
    }
}

/// Connects to the database at `url`.
pub async fn connect(url: &str) -> Result<Pg> {
    let (cfg, tls) = parse(url)?;
    connect_cfg(url, &cfg, tls).await
}

/// Connects to the server's `postgres` database: where databases are created and dropped.
async fn connect_maintenance(url: &str) -> Result<(Pg, String)> {
    let (mut cfg, tls) = parse(url)?;
    let name = cfg.get_dbname().map(str::to_string).or_else(|| cfg.get_user().map(str::to_string)).unwrap_or_else(|| "postgres".into());
    cfg.dbname("postgres");
    Ok((connect_cfg(url, &cfg, tls).await?, name))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the database named in `url` if it is missing; true when it was created.
pub async fn ensure_database(url: &str) -> Result<bool> {
    let (admin, name) = connect_maintenance(url).await?;
    let exists =
        admin.bounded("looking up the database", admin.client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])).await?.is_some();
    if !exists {
        admin.bounded("CREATE DATABASE", admin.client.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))).await?;
    }
    Ok(!exists)
}

/// Drops the database named in `url` (tests use it to clean up after themselves).
pub async fn drop_database(url: &str) -> Result<()> {
    let (admin, name) = connect_maintenance(url).await?;
    admin.bounded("DROP DATABASE", admin.client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&name)))).await
}

impl Pg {
    /// Creates the `users` table where it is missing and adds the seed users whose handles are not
    /// there yet. A re-run changes nothing.
    pub async fn setup(&self) -> Result<()> {
        self.bounded("creating the users table", self.client.batch_execute(SCHEMA)).await?;
        self.bounded("adding the seed users", self.client.batch_execute(SEED_USERS)).await
    }

    /// How many rows `users` has (fails when the table is missing).
    pub async fn count_users(&self) -> Result<i64> {
        let row = self.bounded("counting users", self.client.query_one("SELECT count(*) FROM public.users", &[])).await?;
        row.try_get(0).map_err(|e| pg_error(&self.url, Some("counting users"), e))
    }

    /// The users with these handles, by handle. Handles not in the table are simply absent; a
    /// handle of several rows is an error that names it (the handle is how a user is found).
    ///
    /// The table is the app's, not ours: a column of another type or a NULL is reported by name,
    /// never a panic. `handle::text` lets the statement run whatever the column's type, so that
    /// the check below can name it.
    pub async fn users_by_handle(&self, handles: &[String]) -> Result<HashMap<String, User>> {
        let url = &self.url;
        let sql = "SELECT uuid, display_name, handle FROM public.users WHERE handle::text = ANY($1) ORDER BY uuid";
        let stmt = self.bounded("reading users", self.client.prepare(sql)).await?;
        for (col, want) in stmt.columns().iter().zip([Type::UUID, Type::TEXT, Type::TEXT]) {
            let ok = col.type_() == &want || (want == Type::TEXT && col.type_() == &Type::VARCHAR);
            if !ok {
                return Err(schema_error(url, col.name(), &format!("has type {}", col.type_()), &want));
            }
        }
        let rows = self.bounded("reading users", self.client.query(&stmt, &[&handles])).await?;
        let mut found: HashMap<String, Vec<User>> = HashMap::new();
        for r in &rows {
            let handle: String = column(r, url, 2, "text", "")?;
            let of = format!(" for handle {handle}");
            let u = User { uuid: column(r, url, 0, "uuid", &of)?, display_name: column(r, url, 1, "text", &of)?, handle };
            found.entry(u.handle.clone()).or_default().push(u);
        }
        if let Some(twins) = found.values().filter(|us| us.len() > 1).min_by(|a, b| a[0].handle.cmp(&b[0].handle)) {
            let uuids: Vec<uuid::Uuid> = twins.iter().map(|u| u.uuid).collect();
            return Err(failed(url, duplicate_handle(&twins[0].handle, &uuids)));
        }
        Ok(found.into_iter().filter_map(|(h, mut us)| us.pop().map(|u| (h, u))).collect())
    }
}

/// What to say about the rows of `users` (these `uuids`) that share `handle`.
pub(crate) fn duplicate_handle(handle: &str, uuids: &[uuid::Uuid]) -> String {
    let uuids: Vec<String> = uuids.iter().map(|u| u.to_string()).collect();
    format!(
        "users has {} rows with handle {handle} (uuid {}): the handle is how the scripts find a user; delete or rename all but one of them",
        uuids.len(),
        uuids.join(", ")
    )
}

/// The users with these handles, in this order, from the database at `url`; an error names the
/// first handle that is not there.
pub async fn users(url: &str, handles: &[&str]) -> Result<Vec<User>> {
    let db = connect(url).await?;
    let wanted: Vec<String> = handles.iter().map(|h| h.to_string()).collect();
    let found = db.users_by_handle(&wanted).await?;
    handles
        .iter()
        .map(|h| found.get(*h).cloned().ok_or_else(|| Error::NotFound(format!("no user with handle {} in database {}", quoted(h), db.url()))))
        .collect()
}

/// Every row of `users` at `url`, by uuid (`check --users`).
pub async fn users_by_uuid(url: &str) -> Result<HashMap<uuid::Uuid, User>> {
    let db = connect(url).await?;
    let sql = "SELECT uuid, display_name::text, handle::text FROM public.users";
    let rows = db.bounded("reading users", db.client.query(sql, &[])).await?;
    rows.iter()
        .map(|r| {
            let u =
                User { uuid: column(r, url, 0, "uuid", "")?, display_name: column(r, url, 1, "text", "")?, handle: column(r, url, 2, "text", "")? };
            Ok((u.uuid, u))
        })
        .collect()
}

/// Column `idx` of `row`, or an error that names it: NULL, or a value of another type.
fn column<'a, T: FromSql<'a>>(row: &'a Row, url: &str, idx: usize, want: &str, of: &str) -> Result<T> {
    let col = &row.columns()[idx];
    match row.try_get::<_, Option<T>>(idx) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(schema_error(url, col.name(), &format!("is NULL{of}"), &want)),
        Err(_) => Err(schema_error(url, col.name(), &format!("has type {}", col.type_()), &want)),
    }
}

fn schema_error(url: &str, column: &str, problem: &str, want: &dyn Display) -> Error {
    failed(url, format!("column users.{column} {problem}, expected {want} NOT NULL as in db/schema.sql: fix the row or the table (./bin/db/setup creates it where it is missing)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgresql://u:secret@h:5432/db"), "postgresql://u:***@h:5432/db");
        assert_eq!(redact("postgresql://u@h/db"), "postgresql://u@h/db");
        assert!(!redact("postgresql://u@h/db?password=secret").contains("secret"));
        assert_eq!(redact("host=h password=secret user=u"), "host=h password=*** user=u");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
    }
}
