//! The DynamoDB lease against moto: contention, renewal, expiry on a manual clock, release,
//! the election loop on top of it, and `ballast apply` refusing to write under another holder.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{BillingMode, KeyType, TableStatus};
use ballast_controller::autoscale::Timestamp;
use ballast_controller::lease::{
    DynamoLease, LeaderElector, Lease, LeaseRecord, LeaseSpec, LeaseStatus, blueprint_lease_name,
    ensure_table,
};
use ballast_runtime::ManualClock;
use ballast_testbed::{moto, unique_name};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const START_MS: u64 = 1_700_000_000_000;
/// A safety net for conditions the election loop reaches within a few rounds.
const PATIENCE: Duration = Duration::from_secs(20);

async fn client() -> Client {
    Client::new(&moto().await.sdk_config().await)
}

/// A fresh lease table of its own.
async fn table() -> (Client, String) {
    let client = client().await;
    let table = unique_name("leases");
    ensure_table(&client, &table).await.unwrap();
    (client, table)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_millis(START_MS)))
}

fn lease(
    client: &Client,
    table: &str,
    name: &str,
    holder: &str,
    duration: Duration,
    clock: &Arc<ManualClock>,
) -> DynamoLease {
    DynamoLease::new(
        client.clone(),
        table.to_string(),
        LeaseSpec {
            name: name.to_string(),
            holder: holder.to_string(),
            duration,
        },
        clock.clone(),
    )
}

/// A lease on blueprint `name`'s writer lease for `holder`, 10 minutes long, on a manual clock
/// set to the wall time the CLI uses.
fn wall_clock_lease(
    client: &Client,
    table: &str,
    name: &str,
    holder: &str,
) -> (DynamoLease, Arc<ManualClock>) {
    let wall = Arc::new(ManualClock::new(Timestamp::from_system_time(
        SystemTime::now(),
    )));
    let lease = lease(
        client,
        table,
        &blueprint_lease_name(name),
        holder,
        Duration::from_secs(600),
        &wall,
    );
    (lease, wall)
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

async fn wait_until(leading: &mut watch::Receiver<bool>, want: bool) {
    tokio::time::timeout(PATIENCE, leading.wait_for(|l| *l == want))
        .await
        .unwrap_or_else(|_| panic!("leadership never became {want}"))
        .unwrap();
}

#[tokio::test]
async fn ensure_table_creates_the_table_once() {
    let client = client().await;
    let table = unique_name("leases");
    // Concurrent first calls: one creates, the other finds it being created.
    let (a, b) = tokio::join!(ensure_table(&client, &table), ensure_table(&client, &table));
    a.unwrap();
    b.unwrap();
    ensure_table(&client, &table).await.unwrap();

    let description = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(description.table_status, Some(TableStatus::Active));
    let key = &description.key_schema()[0];
    assert_eq!(
        (key.attribute_name(), key.key_type()),
        ("lease", &KeyType::Hash)
    );
    assert_eq!(
        description
            .billing_mode_summary
            .and_then(|b| b.billing_mode),
        Some(BillingMode::PayPerRequest)
    );
    let tags = client
        .list_tags_of_resource()
        .resource_arn(description.table_arn.unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "ballast.dev/managed" && t.value() == "true"),
        "{tags:?}"
    );
}

#[tokio::test]
async fn of_two_contenders_exactly_one_holds() {
    let (client, table) = table().await;
    let clock = clock();
    let name = unique_name("contend");
    let ttl = Duration::from_secs(30);
    let a = lease(&client, &table, &name, "holder-a", ttl, &clock);
    let b = lease(&client, &table, &name, "holder-b", ttl, &clock);

    let (ra, rb) = tokio::join!(a.try_acquire(), b.try_acquire());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let until = at(START_MS + 30_000);
    match (&ra, &rb) {
        (LeaseStatus::Held { until: u }, LeaseStatus::HeldByOther { holder, until: o })
            if holder == "holder-a" =>
        {
            assert_eq!((*u, *o), (until, until));
        }
        (LeaseStatus::HeldByOther { holder, until: o }, LeaseStatus::Held { until: u })
            if holder == "holder-b" =>
        {
            assert_eq!((*u, *o), (until, until));
        }
        other => panic!("exactly one holder expected: {other:?}"),
    }
    let winner = if ra.is_held() { "holder-a" } else { "holder-b" };
    assert_eq!(a.read().await.unwrap().unwrap().holder, winner);
}

#[tokio::test]
async fn the_holder_renews_and_the_other_gets_in_only_after_expiry() {
    let (client, table) = table().await;
    let clock = clock();
    let name = unique_name("expiry");
    let ttl = Duration::from_secs(30);
    let a = lease(&client, &table, &name, "holder-a", ttl, &clock);
    let b = lease(&client, &table, &name, "holder-b", ttl, &clock);

    assert_eq!(
        a.try_acquire().await.unwrap(),
        LeaseStatus::Held {
            until: at(START_MS + 30_000)
        }
    );
    clock.advance(Duration::from_secs(10));
    // Renewal: a later expiry, the same tenure.
    assert_eq!(
        a.try_acquire().await.unwrap(),
        LeaseStatus::Held {
            until: at(START_MS + 40_000)
        }
    );
    assert_eq!(
        a.read().await.unwrap().unwrap(),
        LeaseRecord {
            holder: "holder-a".into(),
            expires_at: at(START_MS + 40_000),
            acquired_at: Some(at(START_MS)),
        }
    );
    // Past the first expiry but within the renewed one, and at the very expiry instant.
    for now in [START_MS + 35_000, START_MS + 40_000] {
        clock.set(Timestamp::from_millis(now));
        assert_eq!(
            b.try_acquire().await.unwrap(),
            LeaseStatus::HeldByOther {
                holder: "holder-a".into(),
                until: at(START_MS + 40_000)
            }
        );
    }
    // One millisecond later the stale lease is b's, without anyone releasing it.
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        b.try_acquire().await.unwrap(),
        LeaseStatus::Held {
            until: at(START_MS + 70_001)
        }
    );
    assert_eq!(
        b.read().await.unwrap().unwrap().acquired_at,
        Some(at(START_MS + 40_001))
    );
    // And a, coming back, is told so.
    assert_eq!(
        a.try_acquire().await.unwrap(),
        LeaseStatus::HeldByOther {
            holder: "holder-b".into(),
            until: at(START_MS + 70_001)
        }
    );
}

#[tokio::test]
async fn release_lets_the_other_in_at_once_but_only_the_holder_can_release() {
    let (client, table) = table().await;
    let clock = clock();
    let name = unique_name("release");
    let ttl = Duration::from_secs(30);
    let a = lease(&client, &table, &name, "holder-a", ttl, &clock);
    let b = lease(&client, &table, &name, "holder-b", ttl, &clock);

    assert!(a.try_acquire().await.unwrap().is_held());
    // b does not hold it: its release leaves a's item alone.
    b.release().await.unwrap();
    assert_eq!(a.read().await.unwrap().unwrap().holder, "holder-a");
    assert!(!b.try_acquire().await.unwrap().is_held());

    a.release().await.unwrap();
    assert_eq!(a.read().await.unwrap(), None);
    // No clock movement needed.
    assert!(b.try_acquire().await.unwrap().is_held());
    // Releasing twice, or something not held at all, is fine.
    a.release().await.unwrap();
    b.release().await.unwrap();
    b.release().await.unwrap();
    assert_eq!(b.read().await.unwrap(), None);
}

#[tokio::test]
async fn the_elector_leads_alone_and_hands_over_on_cancel_or_expiry() {
    let (client, table) = table().await;
    let clock = clock();
    let name = unique_name("elect");
    // Rounds every 100 ms of real time; expiry follows the manual clock.
    let ttl = Duration::from_millis(300);
    let lease_of = |holder: &str| Lease::from(lease(&client, &table, &name, holder, ttl, &clock));

    let cancel_a = CancellationToken::new();
    let (mut a, task_a) = LeaderElector::spawn(lease_of("replica-a"), cancel_a.clone());
    wait_until(&mut a, true).await;
    let (mut b, task_b) = LeaderElector::spawn(lease_of("replica-b"), CancellationToken::new());

    // a steps down and releases; only then can b lead (the clock has not moved).
    cancel_a.cancel();
    wait_until(&mut b, true).await;
    assert!(!*a.borrow());
    task_a.await.unwrap();
    assert_eq!(
        lease(&client, &table, &name, "x", ttl, &clock)
            .read()
            .await
            .unwrap()
            .unwrap()
            .holder,
        "replica-b"
    );

    // b crashes without releasing: its item stays until the clock passes its expiry.
    task_b.abort();
    let _ = task_b.await;
    let cancel_c = CancellationToken::new();
    let (mut c, task_c) = LeaderElector::spawn(lease_of("replica-c"), cancel_c.clone());
    let probe = lease(&client, &table, &name, "probe", ttl, &clock);
    assert!(
        !probe.try_acquire().await.unwrap().is_held(),
        "b's lease is still fresh"
    );
    assert!(!*c.borrow());
    clock.advance(Duration::from_secs(1));
    wait_until(&mut c, true).await;
    assert_eq!(probe.read().await.unwrap().unwrap().holder, "replica-c");

    cancel_c.cancel();
    task_c.await.unwrap();
    assert!(!*c.borrow());
    assert_eq!(probe.read().await.unwrap(), None, "released on cancel");
}

fn ballast(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(args)
        .envs(ballast_testbed::child_env())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("BALLAST_LEASE_TABLE")
        .output()
        .expect("ballast runs")
}

#[tokio::test]
async fn apply_refuses_to_write_while_another_writer_holds_the_lease() {
    let name = unique_name("leased");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bp.yaml");
    std::fs::write(
        &file,
        format!(
            r#"apiVersion: ballast.dev/v1
kind: Blueprint
metadata: {{ name: {name}, region: us-east-1 }}
spec:
  queues:
    - name: work
      deletionPolicy: delete
  tables:
    - name: items
      hashKey: {{ name: id, type: S }}
      deletionPolicy: delete
"#
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let endpoint = moto().await.endpoint();
    let (client, table) = table().await;

    // A controller elsewhere holds the blueprint's lease, on the wall clock the CLI uses.
    let (controller, _wall) = wall_clock_lease(&client, &table, &name, "controller-on-host-7");
    let LeaseStatus::Held { until } = controller.try_acquire().await.unwrap() else {
        panic!("the controller takes the free lease");
    };

    for command in ["apply", "destroy"] {
        let out = ballast(&[
            command,
            file,
            "--auto-approve",
            "--lease-table",
            &table,
            "--endpoint-url",
            &endpoint,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        let expected = format!(
            "another writer holds the lease for blueprint {name}: controller-on-host-7 until {}; \
             wait for it or stop that controller",
            ballast_controller::lease::format_time(until)
        );
        assert!(stderr.contains(&expected), "{command}: {stderr}");
    }

    // Nothing was written, and the controller still holds its lease.
    let config = moto().await.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    assert!(
        sqs.get_queue_url()
            .queue_name(format!("{name}-work"))
            .send()
            .await
            .is_err(),
        "no queue was created"
    );
    let items = client
        .describe_table()
        .table_name(format!("{name}-items"))
        .send()
        .await;
    assert!(
        items
            .unwrap_err()
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "no table was created"
    );
    assert_eq!(
        controller.read().await.unwrap().unwrap().holder,
        "controller-on-host-7"
    );

    // Once the controller lets go, apply goes ahead and gives the lease back when done.
    controller.release().await.unwrap();
    let out = ballast(&[
        "apply",
        file,
        "--auto-approve",
        "--lease-table",
        &table,
        "--endpoint-url",
        &endpoint,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sqs.get_queue_url()
        .queue_name(format!("{name}-work"))
        .send()
        .await
        .unwrap();
    assert_eq!(controller.read().await.unwrap(), None, "apply released it");
}

#[tokio::test]
async fn force_unlock_asks_and_removes_only_the_lease_it_showed() {
    let name = unique_name("unlock");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bp.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {{ name: {name}, region: us-east-1 }}\nspec:\n  queues:\n    - name: work\n"
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let endpoint = moto().await.endpoint();
    let (client, table) = table().await;
    // An apply that was SIGKILLed left its lease behind.
    let (killed, wall) = wall_clock_lease(&client, &table, &name, "cli@killed-host");
    assert!(killed.try_acquire().await.unwrap().is_held());
    let unlock = |extra: &[&str]| {
        let mut args = vec![
            "force-unlock",
            file,
            "--lease-table",
            &table,
            "--endpoint-url",
            &endpoint,
        ];
        args.extend_from_slice(extra);
        ballast(&args)
    };

    // Without a terminal to ask on and without --auto-approve, nothing is removed.
    let out = unlock(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("held by cli@killed-host (valid until "),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pass --auto-approve"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        killed.read().await.unwrap().unwrap().holder,
        "cli@killed-host"
    );

    let out = unlock(&["--auto-approve"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("Removed the writer lease held by cli@killed-host."),
        "{stdout}"
    );
    assert_eq!(killed.read().await.unwrap(), None);

    let out = unlock(&["--auto-approve"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("No writer lease is held"));

    // A lease renewed after it was shown is not removed.
    assert!(killed.try_acquire().await.unwrap().is_held());
    let shown = killed.read().await.unwrap().unwrap();
    wall.advance(Duration::from_secs(5));
    assert!(killed.try_acquire().await.unwrap().is_held(), "renewed");
    assert!(!killed.force_release(&shown).await.unwrap());
    assert_eq!(
        killed.read().await.unwrap().unwrap().holder,
        "cli@killed-host"
    );
    let current = killed.read().await.unwrap().unwrap();
    assert!(killed.force_release(&current).await.unwrap());
    assert_eq!(killed.read().await.unwrap(), None);
}
