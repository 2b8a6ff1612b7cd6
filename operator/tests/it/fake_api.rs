//! A stateful in-memory Kubernetes API, as a `tower::Service` behind a real
//! `kube::Client`: objects are kept, patched and deleted as the API server
//! would for what the operator does (server-side apply approximated by a merge
//! patch, JSON patches for the finalizer, status subresource, lists narrowed
//! by an equality label selector, deletion with
//! finalizers). It counts the writes, so that a test can require none, and
//! records every request, so that a test can check each against RBAC rules,
//! with the time it arrived, so that a test can require none after a moment.
//! It can also hang, as an API server behind a partition does.
//! `serve` puts the same API on a TCP port, for the operator's binary.
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};
use tokio::time::Instant;

/// Objects by (collection path, e.g. `/apis/apps/v1/namespaces/ns/deployments`, name).
pub type Store = Arc<Mutex<BTreeMap<(String, String), Value>>>;

/// One request as the API server's authorizer would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    /// Whether the object named by the path existed before the request: a
    /// server-side apply that creates an object is authorized as create too.
    pub existed: bool,
}

/// The fake API: its objects, the writes it received (`PATCH path`, …), and
/// every request.
#[derive(Clone, Default)]
pub struct FakeApi {
    pub store: Store,
    pub writes: Arc<Mutex<Vec<String>>>,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    /// When each of `requests` arrived.
    pub arrivals: Arc<Mutex<Vec<Instant>>>,
    /// While set, requests are recorded and never answered.
    pub hang: Arc<AtomicBool>,
}

impl FakeApi {
    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let svc = tower::service_fn(move |req: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.answer(req).await) }
        });
        kube::Client::new(svc, "default")
    }

    /// Serves the API over HTTP on 127.0.0.1 until the task is dropped, for a
    /// process that reads a kubeconfig.
    pub async fn serve(&self) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let api = self.clone();
        let router = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let api = api.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                let response = api
                    .answer(Request::from_parts(parts, Body::from(bytes.to_vec())))
                    .await;
                let (parts, body) = response.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        (addr, task)
    }

    async fn answer(&self, req: Request<Body>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        if req.method() != Method::GET {
            self.writes
                .lock()
                .unwrap()
                .push(format!("{} {}", req.method(), path));
        }
        let (collection, name, _) = split(&path);
        let existed = name.is_some_and(|name| self.get(&collection, &name).is_some());
        self.requests.lock().unwrap().push(Recorded {
            method: req.method().clone(),
            path,
            query: req.uri().query().unwrap_or("").to_owned(),
            content_type: req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            existed,
        });
        self.arrivals.lock().unwrap().push(Instant::now());
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        handle(self.store.clone(), req).await
    }

    /// Every request with the time it arrived, in order.
    pub fn requests_at(&self) -> Vec<(Instant, Recorded)> {
        let arrivals = self.arrivals.lock().unwrap().clone();
        arrivals.into_iter().zip(self.requests()).collect()
    }

    /// From now on, requests wait for ever.
    pub fn hang(&self) {
        self.hang.store(true, Ordering::SeqCst);
    }

    pub fn writes(&self) -> Vec<String> {
        self.writes.lock().unwrap().clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        self.store
            .lock()
            .unwrap()
            .get(&(collection.to_owned(), name.to_owned()))
            .cloned()
    }

    pub fn put(&self, collection: &str, name: &str, object: Value) {
        self.store
            .lock()
            .unwrap()
            .insert((collection.to_owned(), name.to_owned()), object);
    }
}

fn respond(code: StatusCode, v: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

fn status(code: u16, reason: &str, msg: &str) -> Response<Body> {
    respond(
        StatusCode::from_u16(code).unwrap(),
        &json!({"kind":"Status","apiVersion":"v1","status":"Failure","code":code,"reason":reason,"message":msg}),
    )
}

/// Split "/apis/g/v/namespaces/ns/plural/name/status" into (collection, Some(name), Some("status")).
/// Collection = everything up to and including the plural.
fn split(path: &str) -> (String, Option<String>, Option<String>) {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    // prefix length: "api/v1" = 2, "apis/g/v" = 3
    let base = if segs.first() == Some(&"api") { 2 } else { 3 };
    let rest = &segs[base.min(segs.len())..];
    let plural_idx = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        2
    } else {
        0
    };
    let coll_len = base + plural_idx + 1;
    let coll = format!("/{}", segs[..coll_len.min(segs.len())].join("/"));
    let name = segs.get(coll_len).map(|s| s.to_string());
    let sub = segs.get(coll_len + 1).map(|s| s.to_string());
    (coll, name, sub)
}

async fn handle(store: Store, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = body.collect_bytes().await.unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("");
    let ctype = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (coll, name, sub) = split(&path);
    let mut db = store.lock().unwrap();

    match (&parts.method, name) {
        // LIST (namespaced or cluster-wide: cluster-wide collection has no "/namespaces/")
        (&Method::GET, None) if !query.contains("watch=true") => {
            let items: Vec<Value> = db
                .iter()
                .filter(|((c, _), _)| {
                    c == &coll || {
                        // cluster-wide list "/apis/g/v/plural" matches "/apis/g/v/namespaces/*/plural"
                        let (prefix, plural) = coll.rsplit_once('/').unwrap();
                        !coll.contains("/namespaces/")
                            && c.starts_with(&format!("{prefix}/namespaces/"))
                            && c.ends_with(&format!("/{plural}"))
                    }
                })
                .map(|(_, v)| v.clone())
                .filter(|v| selects(query, v))
                .collect();
            respond(
                StatusCode::OK,
                &json!({"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":items}),
            )
        }
        // A watch that has nothing to stream: it answers as the API server does
        // when the client's resourceVersion is too old, and the client lists
        // again, which is how a watcher here sees what changed.
        (&Method::GET, None) => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from(
                serde_json::to_vec(&json!({"type": "ERROR", "object": {
                    "kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "Expired", "message": "too old resource version", "code": 410,
                }}))
                .unwrap(),
            ))
            .unwrap(),
        (&Method::GET, Some(n)) => match db.get(&(coll, n.clone())) {
            Some(v) => respond(StatusCode::OK, v),
            None => status(404, "NotFound", &format!("{n} not found")),
        },
        (&Method::POST, None) => {
            let mut obj: Value = serde_json::from_slice(&bytes).unwrap();
            let n = obj["metadata"]["name"]
                .as_str()
                .unwrap_or("generated")
                .to_string();
            if db.contains_key(&(coll.clone(), n.clone())) {
                return status(409, "AlreadyExists", "exists");
            }
            bump_meta(&mut obj, None);
            db.insert((coll, n), obj.clone());
            respond(StatusCode::CREATED, &obj)
        }
        (&Method::PATCH, Some(n)) => {
            let key = (coll, n.clone());
            let existing = db.get(&key).cloned();
            let patch: Value = serde_json::from_slice(&bytes).unwrap();
            let mut obj = match (&existing, ctype.as_str()) {
                (Some(e), _) => e.clone(),
                (None, "application/apply-patch+yaml") => json!({}), // SSA creates
                (None, _) => return status(404, "NotFound", &format!("{n} not found")),
            };
            // optimistic concurrency if the patch carries a resourceVersion
            if let (Some(rv), Some(e)) = (patch["metadata"]["resourceVersion"].as_str(), &existing)
                && e["metadata"]["resourceVersion"].as_str() != Some(rv)
            {
                return status(409, "Conflict", "resourceVersion mismatch");
            }
            let is_status = sub.as_deref() == Some("status");
            match ctype.as_str() {
                // NB: naive SSA = JSON merge patch (no field ownership, lists replaced wholesale)
                "application/apply-patch+yaml" | "application/merge-patch+json" => {
                    let mut p = patch.clone();
                    if is_status {
                        p = json!({"status": p["status"].clone()});
                    } else if let Some(o) = p.as_object_mut() {
                        o.remove("status");
                    }
                    json_patch::merge(&mut obj, &p);
                }
                "application/json-patch+json" => {
                    let mut p: json_patch::Patch = serde_json::from_value(patch).unwrap();
                    // apiserver semantics: `test` of a missing path against null succeeds
                    // (kube's finalizer helper relies on this); the json-patch crate fails it.
                    p.0.retain(|op| {
                        !matches!(op, json_patch::PatchOperation::Test(t)
                        if t.value.is_null() && obj.pointer(t.path.as_str()).is_none())
                    });
                    if let Err(e) = json_patch::patch(&mut obj, &p) {
                        return status(422, "Invalid", &e.to_string());
                    }
                }
                other => return status(415, "UnsupportedMediaType", other),
            }
            if let Some(o) = obj["metadata"].as_object_mut() {
                o.remove("resourceVersion");
            }
            bump_meta(&mut obj, existing.as_ref());
            // finalizers removed from a deleting object => really delete
            if obj["metadata"]["deletionTimestamp"].is_string()
                && obj["metadata"]["finalizers"]
                    .as_array()
                    .is_none_or(|f| f.is_empty())
            {
                db.remove(&key);
            } else {
                db.insert(key, obj.clone());
            }
            respond(StatusCode::OK, &obj)
        }
        (&Method::DELETE, Some(n)) => {
            let key = (coll, n.clone());
            let Some(mut obj) = db.get(&key).cloned() else {
                return status(404, "NotFound", &format!("{n} not found"));
            };
            if obj["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
            {
                obj["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z".into();
                db.insert(key, obj.clone());
                respond(StatusCode::OK, &obj) // Api::delete -> Either::Left(obj)
            } else {
                db.remove(&key);
                respond(
                    StatusCode::OK,
                    &json!({"kind":"Status","apiVersion":"v1","status":"Success"}),
                )
            }
        }
        (m, _) => status(405, "MethodNotAllowed", &format!("{m} {path}")),
    }
}

fn bump_meta(obj: &mut Value, existing: Option<&Value>) {
    let rv = existing
        .and_then(|e| e["metadata"]["resourceVersion"].as_str())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    let m = &mut obj["metadata"];
    m["resourceVersion"] = rv.to_string().into();
    if m["uid"].is_null() {
        m["uid"] = format!("uid-{rv}-{}", m["name"].as_str().unwrap_or("")).into();
    }
    if m["creationTimestamp"].is_null() {
        m["creationTimestamp"] = "2025-01-01T00:00:00Z".into();
    }
}

/// Whether `object` matches the `labelSelector` of `query`, as the API server
/// reads an equality-based selector (`k=v,k2=v2`); no selector matches all.
fn selects(query: &str, object: &Value) -> bool {
    let Some(selector) = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("labelSelector="))
    else {
        return true;
    };
    let selector = decode(selector);
    selector
        .split(',')
        .filter(|term| !term.is_empty())
        .all(|term| {
            let (key, value) = term.split_once('=').unwrap_or((term, ""));
            let value = value.trim_start_matches('=');
            object["metadata"]["labels"][key].as_str() == Some(value)
        })
}

/// A query value with its `%XX` escapes and `+` decoded.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}
