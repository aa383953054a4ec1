//! `LeaderElector` and `HeldLease` driving a [`KubeLease`] against a tower-test mock API server.
//! Tokio's clock is paused, so each `duration / 3` wait passes as soon as everything else is
//! idle; lease expiry follows the [`ManualClock`].

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use ::kube::client::Body;
use http::{Method, Request, Response};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower_test::mock;

use super::*;
use ballast_runtime::{ManualClock, Timestamp};

const NS: &str = "ballast";
const NAME: &str = "ballast-controller";
const ME: &str = "replica-a";
const OTHER: &str = "replica-b";
const ITEM: &str = "/apis/coordination.k8s.io/v1/namespaces/ballast/leases/ballast-controller";
const START: u64 = 1_700_000_000;

type Handle = mock::Handle<Request<Body>, Response<Body>>;

fn setup() -> (Lease, Handle, Arc<ManualClock>) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = ::kube::Client::new(service, "default");
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(START)));
    let lease = KubeLease::new(
        client,
        NS,
        LeaseSpec {
            name: NAME.into(),
            holder: ME.into(),
            duration: Duration::from_secs(15),
        },
        clock.clone(),
    );
    (lease.into(), handle, clock)
}

fn time(secs: u64) -> String {
    format_time(UNIX_EPOCH + Duration::from_secs(secs)).replace('Z', ".000000Z")
}

fn lease_object(holder: Option<&str>, renewed: u64, version: &str, transitions: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": { "name": NAME, "namespace": NS, "resourceVersion": version },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": time(renewed),
            "renewTime": time(renewed),
            "leaseTransitions": transitions
        }
    })
}

fn respond(send: mock::SendResponse<Response<Body>>, status: u16, body: &Value) {
    send.send_response(
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

fn status(code: u16, reason: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": reason, "reason": reason, "code": code
    })
}

async fn next(handle: &mut Handle, method: Method) -> (Value, mock::SendResponse<Response<Body>>) {
    let (request, send) = handle.next_request().await.expect("a request");
    assert_eq!(request.method(), method, "{}", request.uri());
    let path = request.uri().path();
    if method == Method::POST {
        assert_eq!(Some(path), ITEM.strip_suffix("/ballast-controller"));
    } else {
        assert_eq!(path, ITEM);
    }
    let body = request.into_body().collect_bytes().await.unwrap();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (body, send)
}

/// GET → 404, POST → created: the elector leads.
async fn serve_create(handle: &mut Handle) {
    let (_, send) = next(handle, Method::GET).await;
    respond(send, 404, &status(404, "NotFound"));
    let (body, send) = next(handle, Method::POST).await;
    assert_eq!(body["spec"]["holderIdentity"], ME);
    let mut created = body.clone();
    created["metadata"]["resourceVersion"] = json!("1");
    respond(send, 201, &created);
}

/// Our release: GET shows us, PUT clears the holder.
async fn serve_release(handle: &mut Handle, renewed: u64) {
    let (_, send) = next(handle, Method::GET).await;
    respond(send, 200, &lease_object(Some(ME), renewed, "9", 0));
    let (body, send) = next(handle, Method::PUT).await;
    assert_eq!(body["metadata"]["resourceVersion"], "9");
    assert!(body["spec"]["holderIdentity"].is_null(), "{body}");
    respond(send, 200, &body);
}

#[tokio::test(start_paused = true)]
async fn elector_leads_renews_and_releases_on_cancel() {
    let (lease, mut handle, clock) = setup();
    let cancel = CancellationToken::new();
    let (mut leading, task) = LeaderElector::spawn(lease, cancel.clone());
    assert!(!*leading.borrow());

    serve_create(&mut handle).await;
    leading.wait_for(|l| *l).await.unwrap();

    // The next round, duration/3 later, renews: same holder, same transitions.
    clock.advance(Duration::from_secs(5));
    let started = tokio::time::Instant::now();
    let (_, send) = next(&mut handle, Method::GET).await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    respond(send, 200, &lease_object(Some(ME), START, "2", 0));
    let (body, send) = next(&mut handle, Method::PUT).await;
    assert_eq!(body["metadata"]["resourceVersion"], "2");
    assert_eq!(body["spec"]["holderIdentity"], ME);
    assert_eq!(body["spec"]["leaseTransitions"], 0);
    assert_eq!(body["spec"]["renewTime"], time(START + 5));
    assert_eq!(body["spec"]["acquireTime"], time(START));
    respond(send, 200, &body);

    cancel.cancel();
    serve_release(&mut handle, START + 5).await;
    task.await.unwrap();
    assert!(!*leading.borrow());
    assert!(
        handle.next_request().await.is_none(),
        "nothing after release"
    );
}

#[tokio::test(start_paused = true)]
async fn elector_follows_until_the_other_holder_expires() {
    let (lease, mut handle, clock) = setup();
    let cancel = CancellationToken::new();
    let (mut leading, task) = LeaderElector::spawn(lease, cancel.clone());

    // Two rounds while the other replica's lease is fresh: no write, not leading.
    for _ in 0..2 {
        let (_, send) = next(&mut handle, Method::GET).await;
        respond(send, 200, &lease_object(Some(OTHER), START, "7", 2));
        assert!(!*leading.borrow());
    }
    // The other replica stopped renewing; past renewTime + 15s the lease is up for grabs.
    clock.advance(Duration::from_secs(16));
    let (_, send) = next(&mut handle, Method::GET).await;
    assert!(!*leading.borrow());
    respond(send, 200, &lease_object(Some(OTHER), START, "7", 2));
    let (body, send) = next(&mut handle, Method::PUT).await;
    assert_eq!(body["metadata"]["resourceVersion"], "7");
    assert_eq!(body["spec"]["holderIdentity"], ME);
    assert_eq!(body["spec"]["leaseTransitions"], 3);
    respond(send, 200, &body);
    leading.wait_for(|l| *l).await.unwrap();

    cancel.cancel();
    serve_release(&mut handle, START + 16).await;
    task.await.unwrap();
    assert!(!*leading.borrow());
}

#[tokio::test(start_paused = true)]
async fn elector_steps_down_when_renewals_fail_past_expiry() {
    let (lease, mut handle, clock) = setup();
    let cancel = CancellationToken::new();
    let (mut leading, task) = LeaderElector::spawn(lease, cancel.clone());
    serve_create(&mut handle).await;
    leading.wait_for(|l| *l).await.unwrap();

    // The API server fails; within the 15s we hold, we still lead.
    clock.advance(Duration::from_secs(5));
    let (_, send) = next(&mut handle, Method::GET).await;
    respond(send, 500, &status(500, "InternalError"));
    let (_, send) = next(&mut handle, Method::GET).await;
    assert!(*leading.borrow(), "still within the lease");
    // Past the lease's end without a renewal: step down.
    clock.advance(Duration::from_secs(11));
    respond(send, 500, &status(500, "InternalError"));
    leading.wait_for(|l| !*l).await.unwrap();

    // Nothing held, so cancelling (while it waits for the next round) releases nothing.
    cancel.cancel();
    task.await.unwrap();
    assert!(
        handle.next_request().await.is_none(),
        "no release of a lease we do not hold"
    );
}

#[tokio::test(start_paused = true)]
async fn held_lease_reports_loss_to_another_holder() {
    let (lease, mut handle, clock) = setup();
    let server = tokio::spawn(async move {
        serve_create(&mut handle).await;
        // First renewal: somebody else holds it now (we stalled past expiry).
        let (_, send) = next(&mut handle, Method::GET).await;
        respond(send, 200, &lease_object(Some(OTHER), START + 20, "5", 1));
        // Release after the loss: the lease is not ours, so only a GET.
        let (_, send) = next(&mut handle, Method::GET).await;
        respond(send, 200, &lease_object(Some(OTHER), START + 20, "5", 1));
        handle
    });
    assert!(lease.try_acquire().await.unwrap().is_held());
    clock.advance(Duration::from_secs(21));
    let mut held = HeldLease::start(lease, Duration::from_secs(5));
    match held.lost().await {
        LeaseError::Lost { name, holder, .. } => {
            assert_eq!(name, NAME);
            assert_eq!(holder, OTHER);
        }
        other => panic!("{other:?}"),
    }
    held.release().await.unwrap();
    let mut handle = server.await.unwrap();
    assert!(handle.next_request().await.is_none());
}

#[test]
fn names_and_holders() {
    assert_eq!(blueprint_lease_name("banking"), "ballast-blueprint-banking");
    let holder = default_holder();
    assert!(
        holder.ends_with(&format!("-{}", std::process::id())),
        "{holder}"
    );
    assert!(holder.len() > std::process::id().to_string().len() + 1);
    assert_eq!(
        format_time(UNIX_EPOCH + Duration::from_millis(1_700_000_000_400)),
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        renew_period(Duration::from_secs(60)),
        Duration::from_secs(20)
    );
}
