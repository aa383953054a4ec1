use std::sync::{Arc, Mutex};

use super::*;

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn plan_starts_new_instances_and_stops_departed_ones() {
    let (start, stop) = plan_processes(&set(&["i-1", "i-2", "i-3"]), &set(&["i-2", "i-4"]));
    assert_eq!(start, set(&["i-1", "i-3"]));
    assert_eq!(stop, set(&["i-4"]));
}

#[test]
fn plan_is_empty_when_in_sync() {
    let (start, stop) = plan_processes(&set(&["i-1", "i-2"]), &set(&["i-1", "i-2"]));
    assert!(start.is_empty() && stop.is_empty());
}

#[test]
fn plan_scale_out_from_nothing_and_scale_in_to_nothing() {
    let (start, stop) = plan_processes(&set(&["i-1", "i-2"]), &set(&[]));
    assert_eq!((start, stop), (set(&["i-1", "i-2"]), set(&[])));
    let (start, stop) = plan_processes(&set(&[]), &set(&["i-1", "i-2"]));
    assert_eq!((start, stop), (set(&[]), set(&["i-1", "i-2"])));
}

#[test]
fn restart_backoff_doubles_up_to_the_maximum() {
    let backoff = ballast_runtime::Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };
    let delays: Vec<u64> = (1..=7).map(|f| backoff.delay(f).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(backoff.delay(0), Duration::from_secs(1));
    assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(30));
}

#[test]
fn status_line() {
    let ids = ["i-1".to_string(), "i-2".to_string(), "i-3".to_string()];
    assert_eq!(
        FleetStatus(&ids).to_string(),
        "fleet: 3 workers (i-1, i-2, i-3)"
    );
    assert_eq!(FleetStatus(&ids[..1]).to_string(), "fleet: 1 worker (i-1)");
    assert_eq!(FleetStatus(&[]).to_string(), "fleet: 0 workers");
}

#[test]
fn worker_command_line() {
    let worker = WorkerCommand {
        program: "/bin/ballast-worker".into(),
        args: vec!["consume".into(), "--blueprint".into(), "b.yaml".into()],
        extra: vec!["--concurrency".into(), "4".into()],
    };
    assert_eq!(
        worker.display("i-1"),
        "/bin/ballast-worker consume --blueprint b.yaml --instance-id i-1 --concurrency 4"
    );
}

/// A group whose `InService` instances the test sets.
#[derive(Clone, Default)]
struct FakeGroup(Arc<Mutex<Option<BTreeSet<String>>>>);

impl FakeGroup {
    fn set(&self, ids: &[&str]) {
        *self.0.lock().unwrap() = Some(set(ids));
    }
    fn fail(&self) {
        *self.0.lock().unwrap() = None;
    }
}

impl InstanceSource for FakeGroup {
    fn in_service(&self) -> BoxFuture<'_, Result<BTreeSet<String>, FleetError>> {
        let read = self.0.lock().unwrap().clone();
        Box::pin(async move { read.ok_or_else(|| FleetError::GroupNotFound("fake".into())) })
    }
}

/// A shell "worker": `$2` is the instance id. It exits 0 on SIGTERM, ignores SIGTERM when the
/// instance id contains `stubborn`, and exits 3 at once when it contains `crash`.
fn shell_worker() -> WorkerCommand {
    let script = r#"
case "$2" in
  *crash*) exit 3 ;;
  *stubborn*) trap '' TERM ;;
  *) trap 'exit 0' TERM ;;
esac
while :; do sleep 0.02; done
"#;
    WorkerCommand {
        program: "sh".into(),
        args: vec!["-c".into(), script.into(), "worker".into()],
        extra: vec![],
    }
}

const CONFIG: SupervisorConfig = SupervisorConfig {
    poll: Duration::from_millis(20),
    drain_timeout: Duration::from_millis(500),
    restart: ballast_runtime::Backoff {
        base: Duration::from_millis(20),
        max: Duration::from_secs(5),
    },
};

struct Harness {
    group: FakeGroup,
    cancel: CancellationToken,
    events: mpsc::UnboundedReceiver<FleetEvent>,
    seen: Vec<FleetEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    fn start(initial: &[&str]) -> Self {
        let group = FakeGroup::default();
        group.set(initial);
        let cancel = CancellationToken::new();
        let (tx, events) = mpsc::unbounded_channel();
        let supervisor = Supervisor::new(group.clone(), shell_worker(), CONFIG);
        let task = tokio::spawn(supervisor.run(cancel.clone(), tx));
        Harness {
            group,
            cancel,
            events,
            seen: Vec::new(),
            task,
        }
    }

    /// Waits (at most 10 s) for an event matching `want`; returns it.
    async fn until(&mut self, what: &str, want: impl Fn(&FleetEvent) -> bool) -> FleetEvent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {:#?}", self.seen))
                .unwrap_or_else(|| panic!("supervisor ended before {what}; saw {:#?}", self.seen));
            self.seen.push(event.clone());
            if want(&event) {
                return event;
            }
        }
    }

    /// The `Stopped` event of `id`, already seen or still to come (stops run concurrently).
    async fn stopped(&mut self, id: &str) -> FleetEvent {
        let is_it = |e: &FleetEvent| matches!(e, FleetEvent::Stopped { instance_id, .. } if instance_id == id);
        if let Some(event) = self.seen.iter().find(|e| is_it(e)) {
            return event.clone();
        }
        self.until(&format!("{id} stopped"), is_it).await
    }

    async fn workers(&mut self, ids: &[&str]) {
        let want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        self.until(&format!("workers {ids:?}"), |e| {
            *e == FleetEvent::Workers(want.clone())
        })
        .await;
    }

    fn pid_of(&self, id: &str) -> u32 {
        self.seen
            .iter()
            .rev()
            .find_map(|e| match e {
                FleetEvent::Started { instance_id, pid } if instance_id == id => Some(*pid),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no worker started for {id}"))
    }

    /// Cancels and waits for the supervisor; returns every remaining event.
    async fn shutdown(mut self) -> Vec<FleetEvent> {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the supervisor stops within 10 s")
            .unwrap();
        let mut rest = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            rest.push(event);
        }
        rest
    }
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test]
async fn follows_the_group_out_and_in_and_stops_everything_on_cancel() {
    let mut h = Harness::start(&["i-1"]);
    h.workers(&["i-1"]).await;

    h.group.set(&["i-1", "i-2", "i-3"]);
    h.workers(&["i-1", "i-2", "i-3"]).await;

    h.group.set(&["i-3"]);
    h.workers(&["i-3"]).await;
    for id in ["i-1", "i-2"] {
        let event = h.stopped(id).await;
        let FleetEvent::Stopped { status, killed, .. } = event else {
            unreachable!()
        };
        assert!(!killed, "{id} drained on SIGTERM");
        assert_eq!(status.as_deref(), Some("exit status: 0"));
    }
    let pids: Vec<u32> = ["i-1", "i-2"].iter().map(|id| h.pid_of(id)).collect();
    assert!(
        pids.iter().all(|pid| !alive(*pid)),
        "stopped workers are gone"
    );

    let last = h.pid_of("i-3");
    let rest = h.shutdown().await;
    assert!(rest.contains(&FleetEvent::Workers(vec![])), "{rest:#?}");
    assert!(
        rest.iter().any(|e| matches!(
            e,
            FleetEvent::Stopped { instance_id, killed: false, .. } if instance_id == "i-3"
        )),
        "{rest:#?}"
    );
    assert!(!alive(last), "no worker left after shutdown");
}

#[tokio::test]
async fn a_failed_read_keeps_the_workers() {
    let mut h = Harness::start(&["i-1"]);
    h.workers(&["i-1"]).await;
    h.group.fail();
    for _ in 0..3 {
        h.until("a failed read", |e| {
            matches!(e, FleetEvent::ReadFailed { .. })
        })
        .await;
    }
    h.group.set(&["i-1", "i-2"]);
    h.workers(&["i-1", "i-2"]).await;
    assert!(
        !h.seen
            .iter()
            .any(|e| matches!(e, FleetEvent::Stopping { .. })),
        "{:#?}",
        h.seen
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_worker_that_exits_on_its_own_is_restarted_with_backoff() {
    let mut h = Harness::start(&["i-crash"]);
    let mut delays = Vec::new();
    for _ in 0..3 {
        let event = h
            .until("an unexpected exit", |e| {
                matches!(e, FleetEvent::Exited { .. })
            })
            .await;
        let FleetEvent::Exited {
            status, restart_in, ..
        } = event
        else {
            unreachable!()
        };
        assert_eq!(status, "exit status: 3");
        delays.push(restart_in);
    }
    assert_eq!(
        delays,
        [20, 40, 80].map(Duration::from_millis),
        "exponential backoff"
    );
    // Leaving InService cancels the pending restart.
    h.group.set(&[]);
    h.workers(&[]).await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_worker_that_does_not_drain_is_killed_after_the_timeout() {
    let mut h = Harness::start(&["i-stubborn"]);
    h.workers(&["i-stubborn"]).await;
    let pid = h.pid_of("i-stubborn");
    h.group.set(&[]);
    let started = std::time::Instant::now();
    let event = h
        .until("the stubborn worker stopped", |e| {
            matches!(e, FleetEvent::Stopped { .. })
        })
        .await;
    assert!(matches!(event, FleetEvent::Stopped { killed: true, .. }));
    assert!(started.elapsed() >= CONFIG.drain_timeout);
    assert!(!alive(pid));
    h.shutdown().await;
}

#[tokio::test]
async fn a_missing_worker_binary_is_retried() {
    let group = FakeGroup::default();
    group.set(&["i-1"]);
    let cancel = CancellationToken::new();
    let (tx, mut events) = mpsc::unbounded_channel();
    let worker = WorkerCommand {
        program: "/nonexistent/ballast-worker".into(),
        args: vec![],
        extra: vec![],
    };
    let task = tokio::spawn(Supervisor::new(group, worker, CONFIG).run(cancel.clone(), tx));
    let mut failures = 0;
    while failures < 2 {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(FleetEvent::StartFailed { .. })) => failures += 1,
            Ok(Some(_)) => {}
            other => panic!("expected start failures, got {other:?}"),
        }
    }
    cancel.cancel();
    task.await.unwrap();
}
