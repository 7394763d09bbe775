//! Postgres: the course's `users` table, which the seed and the conversation scripts read and
//! the Cognito sync updates.

use crate::error::{root_cause, Error, Result};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::{Client, Config, NoTls};
use uuid::Uuid;

/// The course's variable for the database URL.
pub const CONNECTION_ENV: &str = "CONNECTION_URL";
/// The URL used when [`CONNECTION_ENV`] is not set.
pub const DEFAULT_URL: &str = "postgresql://postgres@127.0.0.1:5432/cruddur";

/// The course's `users` table (SPEC.md), created only where it is missing. The same file
/// initialises the Postgres of docker-compose.yml.
pub const SCHEMA: &str = include_str!("../../../db/schema.sql");
/// The course's seed users (yaya2devops, bayko), added only where missing.
pub const SEED_USERS: &str = include_str!("../../../db/seed.sql");

/// A row of `users`, as the DynamoDB records need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `users.uuid`.
    pub uuid: Uuid,
    /// `users.display_name`.
    pub display_name: String,
    /// `users.handle`.
    pub handle: String,
}

/// The database URL from `CONNECTION_URL`, or the default.
pub fn url_from_env() -> String {
    std::env::var(CONNECTION_ENV).ok().filter(|u| !u.trim().is_empty()).unwrap_or_else(|| DEFAULT_URL.to_string())
}

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

fn pg_error(url: &str, e: tokio_postgres::Error) -> Error {
    let message = if let Some(db) = e.as_db_error() {
        match db.code().code() {
            "3D000" => format!("{}: run ./bin/local/up to create it, or set CONNECTION_URL", db.message()),
            "28P01" | "28000" => format!("{}: check the user and password in CONNECTION_URL", db.message()),
            _ => db.message().to_string(),
        }
    } else if e.is_closed() || e.to_string().contains("connect") || e.to_string().contains("timed out") {
        format!(
            "cannot connect ({}): start Postgres (./bin/local/up uses the machine's server; `docker compose up -d db` starts one in Docker) or set CONNECTION_URL",
            root_cause(&e)
        )
    } else {
        root_cause(&e)
    };
    Error::Postgres { url: redact(url), message }
}

fn parse(url: &str) -> Result<Config> {
    let mut cfg = Config::from_str(url).map_err(|e| Error::Postgres {
        url: redact(url),
        message: format!("not a valid connection URL ({}); expected postgresql://user[:password]@host:port/database", root_cause(&e)),
    })?;
    cfg.connect_timeout(Duration::from_secs(5));
    Ok(cfg)
}

async fn connect_cfg(url: &str, cfg: &Config) -> Result<Client> {
    let (client, conn) = cfg.connect(NoTls).await.map_err(|e| pg_error(url, e))?;
    tokio::spawn(async move {
        // Errors surface on the client's next call; nothing to do here.
        let _ = conn.await;
    });
    Ok(client)
}

/// Connects to the database at `url`.
pub async fn connect(url: &str) -> Result<Client> {
    connect_cfg(url, &parse(url)?).await
}

/// Wraps a Postgres error with the (redacted) URL.
pub fn error(url: &str, e: tokio_postgres::Error) -> Error {
    pg_error(url, e)
}

/// Connects to the server's `postgres` database: where databases are created and dropped.
async fn connect_maintenance(url: &str) -> Result<(Client, String)> {
    let mut cfg = parse(url)?;
    let name = cfg.get_dbname().map(str::to_string).or_else(|| cfg.get_user().map(str::to_string)).unwrap_or_else(|| "postgres".into());
    cfg.dbname("postgres");
    Ok((connect_cfg(url, &cfg).await?, name))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the database named in `url` if it is missing; true when it was created.
pub async fn ensure_database(url: &str) -> Result<bool> {
    let (admin, name) = connect_maintenance(url).await?;
    let exists = admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await.map_err(|e| pg_error(url, e))?.is_some();
    if !exists {
        admin.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name))).await.map_err(|e| pg_error(url, e))?;
    }
    Ok(!exists)
}

/// Drops the database named in `url` (tests use it to clean up after themselves).
pub async fn drop_database(url: &str) -> Result<()> {
    let (admin, name) = connect_maintenance(url).await?;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&name))).await.map_err(|e| pg_error(url, e))
}

/// Creates the `users` table where it is missing and adds the seed users whose handles are not
/// there yet. A re-run changes nothing.
pub async fn setup(client: &Client, url: &str) -> Result<()> {
    client.batch_execute(SCHEMA).await.map_err(|e| pg_error(url, e))?;
    client.batch_execute(SEED_USERS).await.map_err(|e| pg_error(url, e))
}

/// How many rows `users` has (fails when the table is missing).
pub async fn count_users(client: &Client, url: &str) -> Result<i64> {
    let row = client.query_one("SELECT count(*) FROM public.users", &[]).await.map_err(|e| pg_error(url, e))?;
    Ok(row.get(0))
}

/// The users with these handles, by handle. Handles not in the table are simply absent.
pub async fn users_by_handle(client: &Client, url: &str, handles: &[String]) -> Result<HashMap<String, User>> {
    let rows = client
        .query("SELECT uuid, display_name, handle FROM public.users WHERE handle = ANY($1)", &[&handles])
        .await
        .map_err(|e| pg_error(url, e))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let u = User { uuid: r.get(0), display_name: r.get(1), handle: r.get(2) };
            (u.handle.clone(), u)
        })
        .collect())
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
