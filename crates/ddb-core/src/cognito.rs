//! Cognito: the user pool's users (every page of ListUsers) and their sync into Postgres
//! `users.cognito_user_id` (SPEC.md, `cognito/list-users` and `db/update_cognito_user_ids`).
//!
//! The course read only the first page (60 users) and sent one UPDATE per user in autocommit.
//! Here the whole pool is read, and Postgres is updated by one set-based statement in one
//! transaction: all rows or none.

use crate::call::CallContext;
use crate::error::{input, Error, Result};
use crate::pg::{bounded, Pg};
use crate::target::{Resolved, Target};
use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::types::UserType;
use aws_sdk_cognitoidentityprovider::Client;
use serde::Serialize;
use std::collections::BTreeMap;

/// The course's variable for the pool.
pub const POOL_ENV: &str = "AWS_COGNITO_USER_POOL_ID";

/// A Cognito client bound to one user pool at one target: what the pool's operations take.
#[derive(Debug, Clone)]
pub struct Cognito {
    /// The SDK client.
    pub client: Client,
    /// The user pool id.
    pub pool: String,
    /// Where the client sends requests (for messages).
    pub target: Target,
}

impl Cognito {
    /// A client for `pool` at `target`, configured by `config` (see [`crate::target::sdk_config`]).
    pub fn new(config: &SdkConfig, target: &Target, pool: &str) -> Self {
        Cognito { client: crate::target::client(config, target), pool: pool.to_string(), target: target.clone() }
    }

    /// Builds the client for a resolved target (see [`crate::target::Settings::resolve`]) and
    /// `pool` (see [`pool_id`]). Nothing is sent yet.
    pub async fn connect(resolved: &Resolved, pool: &str) -> Result<Self> {
        let config = crate::target::sdk_config(resolved).await?;
        Ok(Cognito::new(&config, &resolved.target, pool))
    }

    fn ctx(&self, op: &'static str) -> CallContext<'_> {
        CallContext { service: "Cognito", op, target: &self.target, table: None, patience: self.target.patience() }
    }
}

/// The pool id from the flag or [`POOL_ENV`], or an error that says how to set it.
pub fn pool_id(flag: Option<&str>) -> Result<String> {
    pool_id_from(flag, std::env::var(POOL_ENV).ok())
}

fn pool_id_from(flag: Option<&str>, env: Option<String>) -> Result<String> {
    if flag.is_some_and(|p| p.trim().is_empty()) {
        return Err(Error::Usage("--user-pool-id is empty: give the pool's id (or leave the flag out to use AWS_COGNITO_USER_POOL_ID)".into()));
    }
    flag.map(str::to_string)
        .or(env)
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| {
            input(format!(
                "{POOL_ENV} is not set: export {POOL_ENV}=<your pool id> (the AWS console shows it under Cognito > User pools, or run `aws cognito-idp list-user-pools --max-results 10`), or pass --user-pool-id"
            ))
        })
}

/// A user of the pool, with the two attributes the sync needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CognitoUser {
    /// Cognito's user name.
    pub username: String,
    /// `preferred_username`: the handle in Postgres.
    pub handle: Option<String>,
    /// `sub`: the id stored as `cognito_user_id`.
    pub sub: Option<String>,
    /// The user as ListUsers returned it, as boto3 prints it (for the course's output).
    #[serde(skip)]
    pub raw: serde_json::Value,
}

fn user_json(u: &UserType) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    if let Some(n) = u.username() {
        m.insert("Username".into(), n.into());
    }
    m.insert("Attributes".into(), u.attributes().iter().map(|a| serde_json::json!({"Name": a.name(), "Value": a.value()})).collect());
    if let Some(s) = u.user_status() {
        m.insert("UserStatus".into(), s.as_str().into());
    }
    m.insert("Enabled".into(), u.enabled().into());
    for (k, t) in [("UserCreateDate", u.user_create_date()), ("UserLastModifiedDate", u.user_last_modified_date())] {
        if let Some(t) = t.and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()) {
            m.insert(k.into(), t.into());
        }
    }
    serde_json::Value::Object(m)
}

impl Cognito {
    /// Every user of the pool (all pages of ListUsers), with `preferred_username` and `sub`.
    pub async fn list_users(&self) -> Result<Vec<CognitoUser>> {
        let users: Vec<UserType> = self
            .client
            .list_users()
            .user_pool_id(&self.pool)
            .attributes_to_get("preferred_username")
            .attributes_to_get("sub")
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) {
                    Error::NotFound(format!(
                        "user pool {} not found at {}: check {POOL_ENV} and the region (AWS_REGION / AWS_DEFAULT_REGION)",
                        self.pool, self.target
                    ))
                } else {
                    Error::from_sdk(e, &self.ctx("ListUsers"))
                }
            })?;
        Ok(users
            .iter()
            .map(|u| {
                let attr = |name: &str| u.attributes().iter().find(|a| a.name() == name).and_then(|a| a.value()).map(str::to_string);
                CognitoUser {
                    username: u.username().unwrap_or_default().to_string(),
                    handle: attr("preferred_username"),
                    sub: attr("sub"),
                    raw: user_json(u),
                }
            })
            .collect())
    }
}

/// The users that can be synced (`{handle: sub}`), and the ones that cannot, with why.
pub fn handle_map(users: &[CognitoUser]) -> (BTreeMap<String, String>, Vec<(String, String)>) {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for u in users {
        if let Some(h) = &u.handle {
            *seen.entry(h.clone()).or_default() += 1;
        }
    }
    for u in users {
        match (&u.handle, &u.sub) {
            (None, _) => skipped.push((u.username.clone(), "no preferred_username".to_string())),
            (Some(_), None) => skipped.push((u.username.clone(), "no sub".to_string())),
            (Some(h), Some(_)) if seen[h] > 1 => skipped.push((u.username.clone(), format!("preferred_username {h} is shared by {} users", seen[h]))),
            (Some(h), Some(s)) => {
                map.insert(h.clone(), s.clone());
            }
        }
    }
    (map, skipped)
}

/// What the sync changed (or, in a dry run, would change).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Every row that changed, by handle.
    pub changed: Vec<Change>,
    /// Rows that already held their sub.
    pub unchanged: u64,
    /// Cognito handles with no row in `users`.
    pub unmatched: Vec<String>,
    /// Handles whose row still holds `MOCK` afterwards.
    pub still_mock: Vec<String>,
}

/// One row's change of `cognito_user_id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Change {
    /// `users.handle`.
    pub handle: String,
    /// The old value (`None` for NULL).
    pub before: Option<String>,
    /// The new value: the user's `sub`.
    pub after: String,
}

/// A whole run of the sync: the pool read, Postgres updated, each timed.
#[derive(Debug, Clone, Serialize)]
pub struct SyncRun {
    /// What changed in Postgres.
    #[serde(flatten)]
    pub report: SyncReport,
    /// The pool's `{handle: sub}` map that was applied.
    pub map: BTreeMap<String, String>,
    /// Users of the pool left out, with why (see [`handle_map`]).
    pub skipped: Vec<(String, String)>,
    /// Seconds spent reading the pool.
    pub cognito_seconds: f64,
    /// Seconds spent in Postgres (the statement and the transaction).
    pub postgres_seconds: f64,
    /// Nothing was written.
    pub dry_run: bool,
}

/// Reads every user of the pool and sets their `sub` in the `users` table at `pg_url` (see
/// [`sync`]). Postgres is connected first: a database that is not there fails before anything
/// is read or changed.
pub async fn sync_pool(cognito: &Cognito, pg_url: &str, dry_run: bool) -> Result<SyncRun> {
    let mut db = crate::pg::connect(pg_url).await?;
    let started = std::time::Instant::now();
    let users = cognito.list_users().await?;
    let cognito_seconds = started.elapsed().as_secs_f64();
    let (map, skipped) = handle_map(&users);
    let started = std::time::Instant::now();
    let report = sync(&mut db, &map, dry_run).await?;
    Ok(SyncRun { report, map, skipped, cognito_seconds, postgres_seconds: started.elapsed().as_secs_f64(), dry_run })
}

/// The statement of [`sync`]: every row of a handle of the map whose `cognito_user_id` differs,
/// locked, then updated; the old value comes back with each.
const UPDATE: &str = "WITH c AS (SELECT * FROM unnest($1::text[], $2::text[]) AS c(handle, sub)),
      old AS (SELECT u.uuid, u.cognito_user_id AS before FROM public.users u JOIN c ON u.handle = c.handle
              WHERE u.cognito_user_id IS DISTINCT FROM c.sub FOR UPDATE OF u)
 UPDATE public.users u SET cognito_user_id = c.sub
 FROM c, old
 WHERE u.handle = c.handle AND u.uuid = old.uuid
 RETURNING u.handle, old.before, u.cognito_user_id";

/// Sets `users.cognito_user_id` from `map` in one transaction with one UPDATE over the whole map;
/// with `dry_run`, the same statement runs and the transaction is rolled back. Every statement
/// is bounded (see [`Pg`]): a row locked by another session ends the sync with an error that
/// says so, and nothing is changed. A handle of several rows is refused before anything changes:
/// the sub of one Cognito user would be given to all of them.
pub async fn sync(db: &mut Pg, map: &BTreeMap<String, String>, dry_run: bool) -> Result<SyncReport> {
    let handles: Vec<&str> = map.keys().map(String::as_str).collect();
    let subs: Vec<&str> = map.values().map(String::as_str).collect();
    let url = db.url().to_string();
    let client = &mut db.client;
    let tx = bounded(&url, "starting a transaction", client.transaction()).await?;
    let twins = "SELECT handle, array_agg(uuid ORDER BY uuid) FROM public.users WHERE handle = ANY($1)
                 GROUP BY handle HAVING count(*) > 1 ORDER BY handle LIMIT 1";
    let twins = bounded(&url, "looking for handles of several rows", tx.query(twins, &[&handles])).await?;
    if let Some(row) = twins.first() {
        let (handle, uuids): (String, Vec<uuid::Uuid>) = (row.get(0), row.get(1));
        return Err(crate::pg::failed(&url, crate::pg::duplicate_handle(&handle, &uuids)));
    }
    let rows = bounded(&url, "updating users.cognito_user_id", tx.query(UPDATE, &[&handles, &subs])).await?;
    let mut report = SyncReport {
        changed: rows.iter().map(|r| Change { handle: r.get(0), before: r.get(1), after: r.get(2) }).collect(),
        ..SyncReport::default()
    };
    report.changed.sort();
    let matched: i64 =
        bounded(&url, "counting the matched rows", tx.query_one("SELECT count(*) FROM public.users WHERE handle = ANY($1)", &[&handles]))
            .await?
            .get(0);
    report.unchanged = (matched as u64).saturating_sub(report.changed.len() as u64);
    let unmatched = "SELECT h FROM unnest($1::text[]) AS h WHERE NOT EXISTS (SELECT 1 FROM public.users u WHERE u.handle = h) ORDER BY h";
    report.unmatched = bounded(&url, "looking for handles with no row", tx.query(unmatched, &[&handles])).await?.iter().map(|r| r.get(0)).collect();
    let mock = "SELECT handle FROM public.users WHERE cognito_user_id = 'MOCK' ORDER BY handle";
    report.still_mock = bounded(&url, "looking for rows still MOCK", tx.query(mock, &[])).await?.iter().map(|r| r.get(0)).collect();
    if dry_run {
        bounded(&url, "rolling back (dry run)", tx.rollback()).await?;
    } else {
        bounded(&url, "committing", tx.commit()).await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, handle: Option<&str>, sub: Option<&str>) -> CognitoUser {
        CognitoUser { username: name.into(), handle: handle.map(Into::into), sub: sub.map(Into::into), raw: serde_json::Value::Null }
    }

    #[test]
    fn users_without_a_handle_or_with_a_shared_one_are_skipped() {
        let users = [
            user("a", Some("alice"), Some("s1")),
            user("b", None, Some("s2")),
            user("c", Some("twin"), Some("s3")),
            user("d", Some("twin"), Some("s4")),
            user("e", Some("eve"), None),
        ];
        let (map, skipped) = handle_map(&users);
        assert_eq!(map, BTreeMap::from([("alice".to_string(), "s1".to_string())]));
        let names: Vec<&str> = skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", "c", "d", "e"]);
    }

    #[test]
    fn a_missing_pool_id_says_how_to_set_it() {
        let err = pool_id_from(None, None).unwrap_err().to_string();
        assert!(err.contains("AWS_COGNITO_USER_POOL_ID") && err.contains("export"), "{err}");
        let blank = pool_id_from(None, Some(" ".into())).unwrap_err().to_string();
        assert!(blank.contains("is not set"), "{blank}");
        let empty = pool_id_from(Some(""), Some("us-east-1_env".into())).unwrap_err();
        assert!(matches!(empty, Error::Usage(_)) && empty.to_string().contains("--user-pool-id is empty"), "{empty}");
        assert_eq!(pool_id_from(Some("us-east-1_abc"), Some("x".into())).unwrap(), "us-east-1_abc");
        assert_eq!(pool_id_from(None, Some("us-east-1_env".into())).unwrap(), "us-east-1_env");
    }
}
