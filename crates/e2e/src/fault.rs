//! A fault-injecting HTTP proxy in front of DynamoDB Local, for the reliability tests. It
//! forwards every request and, for a chosen share of the requests of chosen operations:
//!
//! - answers `ProvisionedThroughputExceededException` or `ThrottlingException` (HTTP 400) or an
//!   HTTP 500, without forwarding;
//! - forwards only part of a BatchWriteItem and returns the rest as `UnprocessedItems`, as
//!   DynamoDB does under load;
//! - delays the answer;
//! - forwards the request (so the write happens) and then drops the connection in the middle of
//!   the response, so the client cannot know whether it was applied.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// What to inject. Shares are percentages (0..=100) of the requests of the affected operations.
#[derive(Debug, Default)]
pub struct Faults {
    /// Answer ProvisionedThroughputExceededException / ThrottlingException (alternating).
    pub throttle_pct: AtomicU32,
    /// Answer HTTP 500.
    pub http500_pct: AtomicU32,
    /// Forward only part of a BatchWriteItem; the rest comes back as UnprocessedItems.
    pub unprocessed_pct: AtomicU32,
    /// Forward, then drop the connection in the middle of the response.
    pub drop_pct: AtomicU32,
    /// Delay every affected answer by this many milliseconds.
    pub delay_ms: AtomicU32,
    /// Hold this many of the next affected requests until [`Faults::open_gate`] (or for 8 s at
    /// most, below the client's 10 s timeout): a test forces an interleaving with it, whatever
    /// the machine's load.
    pub hold_next: AtomicU32,
    /// Requests held so far.
    pub held: AtomicU64,
    gate_open: std::sync::atomic::AtomicBool,
    /// Faults apply only to operations whose X-Amz-Target ends with one of these (empty: all).
    pub only: std::sync::Mutex<Vec<String>>,
    /// Counters: requests seen, and each kind of fault injected.
    pub requests: AtomicU64,
    /// Throttling answers sent.
    pub throttled: AtomicU64,
    /// HTTP 500 answers sent.
    pub errors500: AtomicU64,
    /// BatchWriteItems answered with UnprocessedItems.
    pub partial: AtomicU64,
    /// Connections dropped mid-response.
    pub dropped: AtomicU64,
    /// Requests seen, by operation (`TransactWriteItems`, ...).
    pub by_op: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl Faults {
    /// How many requests of operation `op` the proxy has seen.
    pub fn seen(&self, op: &str) -> u64 {
        self.by_op.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    /// Holds the next `n` affected requests until [`Faults::open_gate`].
    pub fn hold(&self, n: u32) {
        self.gate_open.store(false, Relaxed);
        self.hold_next.store(n, Relaxed);
    }

    /// Lets the held requests through.
    pub fn open_gate(&self) {
        self.gate_open.store(true, Relaxed);
    }

    /// Faults only for these operations (e.g. `["BatchWriteItem"]`).
    pub fn only(&self, ops: &[&str]) {
        *self.only.lock().unwrap() = ops.iter().map(|s| s.to_string()).collect();
    }

    /// Clears every fault.
    pub fn clear(&self) {
        for a in [&self.throttle_pct, &self.http500_pct, &self.unprocessed_pct, &self.drop_pct, &self.delay_ms] {
            a.store(0, Relaxed);
        }
    }

    /// A one-line account of what was injected.
    pub fn summary(&self) -> String {
        format!(
            "{} requests: {} throttled, {} HTTP 500, {} partial batches, {} connections dropped",
            self.requests.load(Relaxed),
            self.throttled.load(Relaxed),
            self.errors500.load(Relaxed),
            self.partial.load(Relaxed),
            self.dropped.load(Relaxed)
        )
    }
}

/// The running proxy; stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: give this to the binaries as the endpoint.
    pub endpoint: String,
    /// The knobs, changeable while it runs.
    pub faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn roll(pct: &AtomicU32) -> bool {
    let p = pct.load(Relaxed);
    p > 0 && fastrand::u32(0..100) < p
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

fn error_response(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message});
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-errortype", kind)
        .body(full(body.to_string()))
        .unwrap()
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) on a free port, on the shared test
    /// runtime.
    pub fn start(upstream: &str) -> FaultProxy {
        let faults = Arc::new(Faults::default());
        let listener = crate::block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.to_string();
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let f = faults.clone();
        let task = crate::rt().spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (f, client, upstream) = (f.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(req, f.clone(), client.clone(), upstream.clone()));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        FaultProxy { endpoint, faults, task }
    }
}

async fn handle(
    req: Request<Incoming>,
    f: Arc<Faults>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: String,
) -> Result<Response<Body>, std::convert::Infallible> {
    f.requests.fetch_add(1, Relaxed);
    let op = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").rsplit('.').next().unwrap_or("").to_string();
    *f.by_op.lock().unwrap().entry(op.clone()).or_default() += 1;
    let affected = {
        let only = f.only.lock().unwrap();
        only.is_empty() || only.contains(&op)
    };
    let (parts, body) = req.into_parts();
    let mut body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if affected && f.hold_next.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1)).is_ok() {
        f.held.fetch_add(1, Relaxed);
        let until = tokio::time::Instant::now() + Duration::from_secs(8);
        while !f.gate_open.load(Relaxed) && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    if affected {
        let delay = f.delay_ms.load(Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        if roll(&f.throttle_pct) {
            let n = f.throttled.fetch_add(1, Relaxed);
            return Ok(if n.is_multiple_of(2) {
                error_response(StatusCode::BAD_REQUEST, "ProvisionedThroughputExceededException", "injected: throughput exceeded")
            } else {
                error_response(StatusCode::BAD_REQUEST, "ThrottlingException", "injected: rate exceeded")
            });
        }
        if roll(&f.http500_pct) {
            f.errors500.fetch_add(1, Relaxed);
            return Ok(error_response(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "injected: internal error"));
        }
    }
    // Part of a BatchWriteItem held back.
    let mut held: Option<serde_json::Value> = None;
    if affected && op == "BatchWriteItem" && roll(&f.unprocessed_pct) {
        if let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&body) {
            if let Some(tables) = json.get_mut("RequestItems").and_then(|r| r.as_object_mut()) {
                let mut back = serde_json::Map::new();
                for (table, reqs) in tables.iter_mut() {
                    if let Some(list) = reqs.as_array_mut() {
                        if list.len() > 1 {
                            let keep = fastrand::usize(1..list.len());
                            back.insert(table.clone(), serde_json::Value::Array(list.split_off(keep)));
                        }
                    }
                }
                if !back.is_empty() {
                    f.partial.fetch_add(1, Relaxed);
                    body = Bytes::from(json.to_string());
                    held = Some(serde_json::Value::Object(back));
                }
            }
        }
    }
    let uri = format!("{upstream}{}", parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut fwd = Request::builder().method(parts.method.clone()).uri(uri);
    for (k, v) in parts.headers.iter() {
        if k != "host" && k != "content-length" {
            fwd = fwd.header(k, v);
        }
    }
    let fwd = fwd.header("content-length", body.len()).body(Full::new(body)).unwrap();
    let resp = match client.request(fwd).await {
        Ok(r) => r,
        Err(e) => return Ok(error_response(StatusCode::BAD_GATEWAY, "ProxyError", &e.to_string())),
    };
    let (mut rparts, rbody) = resp.into_parts();
    let mut rbytes = rbody.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if let Some(back) = held {
        if rparts.status.is_success() {
            if let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&rbytes) {
                json["UnprocessedItems"] = back;
                rbytes = Bytes::from(json.to_string());
            }
        }
    }
    rparts.headers.remove("content-length");
    // Drop the connection in the middle of the response: the write happened, the client does not
    // know.
    if affected && roll(&f.drop_pct) {
        f.dropped.fetch_add(1, Relaxed);
        let half = rbytes.slice(..rbytes.len() / 2);
        let frames: Vec<Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>> =
            vec![Ok(Frame::data(half)), Err("injected: connection dropped".into())];
        rparts.headers.insert("content-length", rbytes.len().into());
        return Ok(Response::from_parts(rparts, StreamBody::new(futures::stream::iter(frames)).boxed()));
    }
    rparts.headers.insert("content-length", rbytes.len().into());
    Ok(Response::from_parts(rparts, full(rbytes)))
}
