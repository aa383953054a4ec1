//! The Kubernetes lease against a tower-test mock of the API server: the exact requests on the
//! `coordination.k8s.io/v1` Lease, with time from a manual clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock;

use ballast_controller::autoscale::Timestamp;
use ballast_controller::lease::{KubeLease, Lease, LeaseError, LeaseSpec, LeaseStatus};
use ballast_runtime::ManualClock;

const COLLECTION: &str = "/apis/coordination.k8s.io/v1/namespaces/ballast/leases";
const ITEM: &str = "/apis/coordination.k8s.io/v1/namespaces/ballast/leases/ballast-blueprint-bank";
const ME: &str = "replica-a";
const OTHER: &str = "replica-b";
/// 2023-11-14T22:13:20Z
const START: u64 = 1_700_000_000;

type Handle = mock::Handle<Request<Body>, Response<Body>>;

fn setup() -> (Lease, Handle, Arc<ManualClock>) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(START)));
    let lease = KubeLease::new(
        client,
        "ballast",
        LeaseSpec {
            name: "ballast-blueprint-bank".into(),
            holder: ME.into(),
            duration: Duration::from_secs(15),
        },
        clock.clone(),
    );
    (Lease::Kube(lease), handle, clock)
}

fn micro(secs: u64) -> String {
    let t = k8s_openapi::jiff::Timestamp::from_second(secs as i64).unwrap();
    t.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn lease_object(holder: Option<&str>, renewed: u64, version: &str, transitions: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": { "name": "ballast-blueprint-bank", "namespace": "ballast", "resourceVersion": version },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": micro(START - 100),
            "renewTime": micro(renewed),
            "leaseTransitions": transitions
        }
    })
}

fn status(code: u16, reason: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": format!("{reason} (test)"), "reason": reason, "code": code
    })
}

fn respond(send: mock::SendResponse<Response<Body>>, code: u16, body: &Value) {
    send.send_response(
        Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

/// The next request: method and path checked, JSON body returned.
async fn expect(
    handle: &mut Handle,
    method: Method,
    path: &str,
) -> (Value, mock::SendResponse<Response<Body>>) {
    let (request, send) = handle.next_request().await.expect("a request");
    assert_eq!(request.method(), method);
    assert_eq!(request.uri().path(), path);
    let body = request.into_body().collect_bytes().await.unwrap();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (body, send)
}

#[tokio::test]
async fn creates_the_lease_when_absent() {
    let (lease, mut handle, _clock) = setup();
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 404, &status(404, "NotFound"));
        let (body, send) = expect(&mut handle, Method::POST, COLLECTION).await;
        assert_eq!(body["metadata"]["name"], "ballast-blueprint-bank");
        assert_eq!(
            body["spec"],
            json!({
                "holderIdentity": ME,
                "leaseDurationSeconds": 15,
                "acquireTime": micro(START),
                "renewTime": micro(START),
                "leaseTransitions": 0
            })
        );
        let mut created = body.clone();
        created["metadata"]["resourceVersion"] = json!("1");
        respond(send, 201, &created);
        handle
    });
    assert_eq!(
        lease.try_acquire().await.unwrap(),
        LeaseStatus::Held {
            until: at(START + 15)
        }
    );
    let mut handle = server.await.unwrap();
    drop(lease);
    assert!(handle.next_request().await.is_none());
}

#[tokio::test]
async fn a_fresh_lease_of_another_holder_is_left_alone() {
    let (lease, mut handle, clock) = setup();
    // The other holder renewed 10s ago; its 15s run out 5s from now.
    clock.advance(Duration::from_secs(10));
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 200, &lease_object(Some(OTHER), START, "41", 3));
        handle
    });
    assert_eq!(
        lease.try_acquire().await.unwrap(),
        LeaseStatus::HeldByOther {
            holder: OTHER.into(),
            until: at(START + 15)
        }
    );
    let mut handle = server.await.unwrap();
    drop(lease);
    assert!(handle.next_request().await.is_none(), "no write");
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_its_resource_version() {
    let (lease, mut handle, clock) = setup();
    clock.advance(Duration::from_secs(16));
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 200, &lease_object(Some(OTHER), START, "41", 3));
        let (body, send) = expect(&mut handle, Method::PUT, ITEM).await;
        assert_eq!(body["metadata"]["resourceVersion"], "41");
        assert_eq!(body["spec"]["holderIdentity"], ME);
        assert_eq!(body["spec"]["leaseTransitions"], 4);
        assert_eq!(body["spec"]["acquireTime"], micro(START + 16));
        assert_eq!(body["spec"]["renewTime"], micro(START + 16));
        assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
        respond(send, 200, &body);
        handle
    });
    assert_eq!(
        lease.try_acquire().await.unwrap(),
        LeaseStatus::Held {
            until: at(START + 31)
        }
    );
    let mut handle = server.await.unwrap();
    drop(lease);
    assert!(handle.next_request().await.is_none());
}

#[tokio::test]
async fn renewing_our_lease_keeps_its_acquire_time_and_transitions() {
    let (lease, mut handle, clock) = setup();
    clock.advance(Duration::from_secs(5));
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 200, &lease_object(Some(ME), START, "8", 2));
        let (body, send) = expect(&mut handle, Method::PUT, ITEM).await;
        assert_eq!(body["metadata"]["resourceVersion"], "8");
        assert_eq!(body["spec"]["leaseTransitions"], 2);
        assert_eq!(body["spec"]["acquireTime"], micro(START - 100));
        assert_eq!(body["spec"]["renewTime"], micro(START + 5));
        respond(send, 200, &body);
        handle
    });
    assert!(lease.try_acquire().await.unwrap().is_held());
    server.await.unwrap();
}

#[tokio::test]
async fn a_conflict_on_replace_means_another_replica_won() {
    let (lease, mut handle, clock) = setup();
    clock.advance(Duration::from_secs(20));
    let server = tokio::spawn(async move {
        // Released by its last holder: free for anyone.
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 200, &lease_object(None, START, "50", 1));
        let (body, send) = expect(&mut handle, Method::PUT, ITEM).await;
        assert_eq!(body["metadata"]["resourceVersion"], "50");
        assert_eq!(body["spec"]["leaseTransitions"], 2);
        respond(send, 409, &status(409, "Conflict"));
        // Who won? The replica that wrote first.
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 200, &lease_object(Some(OTHER), START + 20, "51", 2));
        handle
    });
    assert_eq!(
        lease.try_acquire().await.unwrap(),
        LeaseStatus::HeldByOther {
            holder: OTHER.into(),
            until: at(START + 35)
        }
    );
    let mut handle = server.await.unwrap();
    drop(lease);
    assert!(handle.next_request().await.is_none());
}

#[tokio::test]
async fn a_conflict_on_create_means_another_replica_won() {
    let (lease, mut handle, _clock) = setup();
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 404, &status(404, "NotFound"));
        let (_, send) = expect(&mut handle, Method::POST, COLLECTION).await;
        respond(send, 409, &status(409, "AlreadyExists"));
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 200, &lease_object(Some(OTHER), START, "1", 0));
        handle
    });
    assert_eq!(
        lease.try_acquire().await.unwrap(),
        LeaseStatus::HeldByOther {
            holder: OTHER.into(),
            until: at(START + 15)
        }
    );
    server.await.unwrap();
}

#[tokio::test]
async fn release_clears_the_holder_only_when_it_is_ours() {
    let (lease, mut handle, _clock) = setup();
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 200, &lease_object(Some(ME), START, "12", 1));
        let (body, send) = expect(&mut handle, Method::PUT, ITEM).await;
        assert_eq!(body["metadata"]["resourceVersion"], "12");
        assert!(body["spec"]["holderIdentity"].is_null(), "{body}");
        assert_eq!(body["spec"]["leaseTransitions"], 1);
        respond(send, 200, &body);
        // Second release: someone else holds it by now, so nothing is written.
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 200, &lease_object(Some(OTHER), START, "13", 2));
        // Third: the lease object is gone.
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 404, &status(404, "NotFound"));
        handle
    });
    lease.release().await.unwrap();
    lease.release().await.unwrap();
    lease.release().await.unwrap();
    let mut handle = server.await.unwrap();
    drop(lease);
    assert!(handle.next_request().await.is_none());
}

#[tokio::test]
async fn api_errors_are_typed() {
    let (lease, mut handle, _clock) = setup();
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut handle, Method::GET, ITEM).await;
        respond(send, 403, &status(403, "Forbidden"));
    });
    let err = lease.try_acquire().await.unwrap_err();
    server.await.unwrap();
    match err {
        LeaseError::Kube(kube::Error::Api(status)) => assert_eq!(status.code, 403),
        other => panic!("{other:?}"),
    }
}
