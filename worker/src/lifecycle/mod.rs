//! Auto Scaling integration: scale-in protection while work is in flight, and draining on a
//! termination lifecycle notice (completing the lifecycle action when done).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_autoscaling::Client;
use ballast_aws::{AwsError, SdkResultExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The lifecycle state of an instance waiting in a terminating hook.
pub const TERMINATING_WAIT: &str = "Terminating:Wait";

/// How often the termination notice is polled and protection refreshed.
#[derive(Debug, Clone, Copy)]
pub struct LifecycleTiming {
    /// How often DescribeAutoScalingInstances is polled for a termination notice.
    pub poll_interval: Duration,
    /// How long the worker must stay idle before scale-in protection is cleared.
    pub idle_debounce: Duration,
}

impl Default for LifecycleTiming {
    fn default() -> Self {
        LifecycleTiming {
            poll_interval: Duration::from_secs(10),
            idle_debounce: Duration::from_secs(30),
        }
    }
}

/// What happened when the worker finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleCompletion {
    /// No hook is configured.
    NoHook,
    /// CompleteLifecycleAction(CONTINUE) succeeded.
    Completed,
    /// CompleteLifecycleAction failed (logged); the hook's timeout will release the instance.
    Failed,
}

/// The instance id from IMDSv2, or `None` (not on EC2, or IMDS unreachable) after a short
/// timeout.
pub async fn instance_id_from_imds() -> Option<String> {
    let client = aws_config::imds::Client::builder()
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(Duration::from_millis(500))
        .max_attempts(1)
        .build();
    let lookup = client.get("/latest/meta-data/instance-id");
    match tokio::time::timeout(Duration::from_secs(2), lookup).await {
        Ok(Ok(id)) => Some(String::from(id)),
        Ok(Err(error)) => {
            tracing::info!(%error, "no instance id from IMDS; scale-in protection off");
            None
        }
        Err(_) => {
            tracing::info!("IMDS timed out; scale-in protection off");
            None
        }
    }
}

/// This instance's membership of an Auto Scaling group.
#[derive(Debug, Clone)]
pub struct InstanceLifecycle {
    client: Client,
    instance_id: String,
    group: String,
    hook: Option<String>,
    protected: Arc<AtomicBool>,
    terminating: Arc<AtomicBool>,
}

impl InstanceLifecycle {
    /// A fleet handle for a known group.
    pub fn new(
        client: Client,
        instance_id: impl Into<String>,
        group: impl Into<String>,
        hook: Option<String>,
    ) -> Self {
        InstanceLifecycle {
            client,
            instance_id: instance_id.into(),
            group: group.into(),
            hook,
            protected: Arc::new(AtomicBool::new(false)),
            terminating: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Looks the instance up; `None` when it is not in an Auto Scaling group.
    #[tracing::instrument(skip(client))]
    pub async fn discover(
        client: Client,
        instance_id: &str,
        hook: Option<String>,
    ) -> Result<Option<InstanceLifecycle>, AwsError> {
        let out = client
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .classify("autoscaling:DescribeAutoScalingInstances")?;
        let group = out
            .auto_scaling_instances()
            .first()
            .and_then(|i| i.auto_scaling_group_name())
            .map(str::to_owned);
        Ok(group.map(|group| InstanceLifecycle::new(client, instance_id, group, hook)))
    }

    /// The group name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Whether a termination notice was seen.
    pub fn is_terminating(&self) -> bool {
        self.terminating.load(Ordering::Relaxed)
    }

    /// The instance's lifecycle state.
    pub async fn lifecycle_state(&self) -> Result<Option<String>, AwsError> {
        let out = self
            .client
            .describe_auto_scaling_instances()
            .instance_ids(&self.instance_id)
            .send()
            .await
            .classify("autoscaling:DescribeAutoScalingInstances")?;
        Ok(out
            .auto_scaling_instances()
            .first()
            .and_then(|i| i.lifecycle_state())
            .map(str::to_owned))
    }

    /// Sets scale-in protection.
    #[tracing::instrument(skip(self), fields(instance_id = %self.instance_id))]
    pub async fn set_protection(&self, protected: bool) -> Result<(), AwsError> {
        self.client
            .set_instance_protection()
            .auto_scaling_group_name(&self.group)
            .instance_ids(&self.instance_id)
            .protected_from_scale_in(protected)
            .send()
            .await
            .classify("autoscaling:SetInstanceProtection")?;
        self.protected.store(protected, Ordering::Relaxed);
        tracing::debug!(protected, "scale-in protection changed");
        Ok(())
    }

    /// Polls for `Terminating:Wait`; when seen, cancels `shutdown` (which stops receiving).
    pub async fn watch_termination(&self, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = shutdown.cancelled() => return,
            }
            match self.lifecycle_state().await {
                Ok(Some(state)) if state == TERMINATING_WAIT => {
                    tracing::info!("termination lifecycle notice: draining");
                    self.terminating.store(true, Ordering::Relaxed);
                    shutdown.cancel();
                    return;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot read the lifecycle state"),
            }
        }
    }

    /// Protects the instance from scale-in while `activity` (messages in flight) is non-zero;
    /// clears the protection after `debounce` of idleness. Returns when `shutdown` fires.
    pub async fn protect_while_busy(
        &self,
        mut activity: watch::Receiver<usize>,
        debounce: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            let busy = *activity.borrow_and_update() > 0;
            let protected = self.protected.load(Ordering::Relaxed);
            if busy && !protected {
                if let Err(error) = self.set_protection(true).await {
                    tracing::warn!(%error, "cannot enable scale-in protection");
                }
            } else if !busy && protected {
                // Debounce: clear only if still idle after `debounce`.
                tokio::select! {
                    () = tokio::time::sleep(debounce) => {
                        if *activity.borrow() == 0
                            && let Err(error) = self.set_protection(false).await
                        {
                            tracing::warn!(%error, "cannot clear scale-in protection");
                        }
                        continue;
                    }
                    changed = activity.changed() => {
                        if changed.is_err() { return; }
                        continue;
                    }
                    () = shutdown.cancelled() => return,
                }
            }
            tokio::select! {
                changed = activity.changed() => if changed.is_err() { return },
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// After draining: completes the terminating lifecycle action (CONTINUE) when a hook is
    /// configured. Never fails: a failure is logged and the hook's timeout releases the instance.
    #[tracing::instrument(skip(self), fields(instance_id = %self.instance_id, group = %self.group))]
    pub async fn finish(&self) -> LifecycleCompletion {
        let Some(hook) = &self.hook else {
            return LifecycleCompletion::NoHook;
        };
        let result = self
            .client
            .complete_lifecycle_action()
            .auto_scaling_group_name(&self.group)
            .lifecycle_hook_name(hook)
            .instance_id(&self.instance_id)
            .lifecycle_action_result("CONTINUE")
            .send()
            .await
            .classify("autoscaling:CompleteLifecycleAction");
        match result {
            Ok(_) => {
                tracing::info!(hook, "lifecycle action completed (CONTINUE)");
                LifecycleCompletion::Completed
            }
            Err(error) => {
                tracing::warn!(%error, hook, "cannot complete the lifecycle action");
                LifecycleCompletion::Failed
            }
        }
    }
}
