//! The Deployment actuator against a tower-test mock of the Kubernetes API server:
//! the exact requests on the `scale` subresource.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock;

use ballast_controller::autoscale::actuator::{
    Actuator, ActuatorError, DeploymentActuator, DryRunActuator, FleetCapacity, SetOutcome,
};

const PATH: &str = "/apis/apps/v1/namespaces/workers/deployments/consumer/scale";

fn scale(spec: i32, status: i32) -> Value {
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": { "name": "consumer", "namespace": "workers" },
        "spec": { "replicas": spec },
        "status": { "replicas": status, "selector": "app=consumer" }
    })
}

fn respond(handle: mock::SendResponse<Response<Body>>, body: &Value) {
    handle.send_response(
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

type Handle = mock::Handle<Request<Body>, Response<Body>>;

fn actuator() -> (DeploymentActuator, Handle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    (
        DeploymentActuator::new(client, "workers", "consumer", 1, 8),
        handle,
    )
}

async fn expect_get(handle: &mut Handle, spec: i32, status: i32) {
    let (request, send) = handle.next_request().await.expect("a GET");
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri().path(), PATH);
    respond(send, &scale(spec, status));
}

#[tokio::test]
async fn reads_and_patches_the_scale_subresource() {
    let (actuator, mut handle) = actuator();
    let server = tokio::spawn(async move {
        expect_get(&mut handle, 2, 2).await;

        let (request, send) = handle.next_request().await.expect("a PATCH");
        assert_eq!(request.method(), Method::PATCH);
        assert_eq!(request.uri().path(), PATH);
        assert_eq!(
            request.headers()["content-type"],
            "application/merge-patch+json"
        );
        let body = request.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, json!({ "spec": { "replicas": 5 } }));
        respond(send, &scale(5, 2));
        handle
    });

    let capacity = actuator.current().await.unwrap();
    assert_eq!(
        capacity,
        FleetCapacity {
            desired: 2,
            in_service: 2,
            min: 1,
            max: 8
        }
    );
    assert_eq!(
        actuator.set_desired(5).await.unwrap(),
        SetOutcome::Changed { from: 2, to: 5 }
    );
    // The desired capacity is remembered: no further request for the same value,
    // and nothing outside [min, max].
    assert_eq!(
        actuator.set_desired(5).await.unwrap(),
        SetOutcome::Unchanged { desired: 5 }
    );
    assert!(matches!(
        actuator.set_desired(9).await,
        Err(ActuatorError::OutOfBounds {
            requested: 9,
            min: 1,
            max: 8,
            ..
        })
    ));
    let mut handle = server.await.unwrap();
    drop(actuator);
    assert!(
        handle.next_request().await.is_none(),
        "no request after the PATCH"
    );
}

#[tokio::test]
async fn dry_run_reads_but_never_patches() {
    let (actuator, mut handle) = actuator();
    let actuator = DryRunActuator::new(actuator);
    let server = tokio::spawn(async move {
        expect_get(&mut handle, 3, 3).await;
        handle
    });
    assert_eq!(actuator.current().await.unwrap().desired, 3);
    assert_eq!(
        actuator.set_desired(6).await.unwrap(),
        SetOutcome::DryRun { from: 3, to: 6 }
    );
    let mut handle = server.await.unwrap();
    drop(actuator);
    assert!(handle.next_request().await.is_none());
}

#[tokio::test]
async fn api_errors_are_typed() {
    let (actuator, mut handle) = actuator();
    let server = tokio::spawn(async move {
        let (_request, send) = handle.next_request().await.expect("a GET");
        send.send_response(
            Response::builder()
                .status(404)
                .header("content-type", "application/json")
                .body(Body::from(
                    serde_json::to_vec(&json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure", "message": "deployments.apps \"consumer\" not found",
                        "reason": "NotFound", "code": 404
                    }))
                    .unwrap(),
                ))
                .unwrap(),
        );
    });
    let err = actuator.current().await.unwrap_err();
    server.await.unwrap();
    match err {
        ActuatorError::Kube(kube::Error::Api(status)) => {
            assert_eq!(status.code, 404);
            assert!(status.message.contains("not found"));
        }
        other => panic!("{other:?}"),
    }
}
