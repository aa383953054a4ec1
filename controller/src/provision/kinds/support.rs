//! Helpers every kind shares: filing what `observe` found, polling for asynchronous AWS work,
//! and the add/remove pairs that bring a live set (tags, route tables, subnets, …) to the
//! desired one.

use std::collections::BTreeSet;
use std::future::Future;

use ballast_blueprint::ResourceId;
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span};

use super::{Observed, Readiness};
use crate::provision::error::ProvisionError;
use crate::provision::state::{LiveState, Ownership};

impl Observed {
    /// Files one resource `observe` found: a declared one is live; an undeclared one is a
    /// removed resource only when this blueprint owns it (anything else is not ours to report).
    pub fn file(&mut self, live: LiveState, declared: bool) {
        if declared {
            self.live.push(live);
        } else if live.ownership == Ownership::Owned {
            self.removed.push(live);
        }
    }
}

/// What one readiness check saw.
#[derive(Debug)]
pub enum Poll<T> {
    Ready(T),
    Pending,
}

/// Polls `check` until it answers [`Poll::Ready`], for at most `readiness.timeout`.
///
/// The first check runs at once; the pause between checks starts at `readiness.poll` and doubles
/// up to eight times that (AWS readiness takes seconds to minutes, and a fixed fast poll only
/// spends request quota), never sleeping past the deadline. Time is tokio's, so tests run it
/// under paused time. `readiness.cancel` ends the wait at once with
/// [`ProvisionError::Interrupted`]: nothing is held between checks, so abandoning it is safe.
pub async fn poll_until<T, F, Fut>(
    readiness: &Readiness,
    id: &ResourceId,
    what: &'static str,
    mut check: F,
) -> Result<T, ProvisionError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, ProvisionError>>,
{
    let span = info_span!("poll_until", resource = %id, what);
    async move {
        let started = Instant::now();
        let deadline = started.checked_add(readiness.timeout);
        let cap = readiness.poll.saturating_mul(8);
        let mut pause = readiness.poll;
        let mut attempts: u32 = 0;
        loop {
            attempts = attempts.saturating_add(1);
            if readiness.cancel.is_cancelled() {
                return Err(ProvisionError::Interrupted {
                    resource: id.clone(),
                    what,
                });
            }
            if let Poll::Ready(value) = check().await? {
                let waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                debug!(attempts, waited_ms, "ready");
                return Ok(value);
            }
            let now = Instant::now();
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(now),
                None => pause,
            };
            if remaining.is_zero() {
                return Err(ProvisionError::NotReady {
                    resource: id.clone(),
                    what,
                    waited_secs: started.elapsed().as_secs(),
                });
            }
            tokio::select! {
                () = readiness.cancel.cancelled() => {
                    return Err(ProvisionError::Interrupted { resource: id.clone(), what });
                }
                () = tokio::time::sleep(pause.min(remaining)) => {}
            }
            pause = pause.saturating_mul(2).min(cap);
        }
    }
    .instrument(span)
    .await
}

/// The changes that bring the set `have` to `want`: what to add and what to remove, each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetDelta {
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

impl SetDelta {
    pub fn between<'a>(
        want: impl IntoIterator<Item = &'a str>,
        have: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let want: BTreeSet<&str> = want.into_iter().collect();
        let have: BTreeSet<&str> = have.into_iter().collect();
        Self {
            add: want.difference(&have).map(|s| s.to_string()).collect(),
            remove: have.difference(&want).map(|s| s.to_string()).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// The additions for an SDK `set_add_…` call: `None` when there are none.
    pub fn adds(&self) -> Option<Vec<String>> {
        Some(self.add.clone()).filter(|v| !v.is_empty())
    }

    /// The removals for an SDK `set_remove_…` call: `None` when there are none.
    pub fn removes(&self) -> Option<Vec<String>> {
        Some(self.remove.clone()).filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use ballast_blueprint::ResourceKind;

    use super::*;
    use crate::provision::state::FieldName;

    fn readiness() -> Readiness {
        Readiness {
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(500),
            cancel: tokio_util::sync::CancellationToken::new(),
        }
    }

    fn id() -> ResourceId {
        ResourceId::new(ResourceKind::Table, "t")
    }

    #[tokio::test(start_paused = true)]
    async fn polls_until_ready_with_a_growing_pause() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let value = poll_until(&readiness(), &id(), "ready", || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(if n == 4 {
                Poll::Ready(n)
            } else {
                Poll::Pending
            })
        })
        .await
        .unwrap();
        assert_eq!(value, 4);
        // Pauses of 0.5 s, 1 s and 2 s before the fourth check.
        assert_eq!(started.elapsed(), Duration::from_millis(3_500));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline_naming_what_it_waited_for() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let err = poll_until(&readiness(), &id(), "table ACTIVE", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<Poll<()>, _>(Poll::Pending)
        })
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                ProvisionError::NotReady {
                    what: "table ACTIVE",
                    waited_secs: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        // Never sleeps past the deadline: 0.5 + 1 + 2 + 4 then the 2.5 s that remain.
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_check_ends_the_polling_at_once() {
        let err = poll_until(&readiness(), &id(), "ready", || async {
            Err::<Poll<()>, _>(ProvisionError::NotDeclared { resource: id() })
        })
        .await
        .unwrap_err();
        assert!(matches!(err, ProvisionError::NotDeclared { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_wait_between_two_checks() {
        let readiness = readiness();
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let cancel = readiness.cancel.clone();
        let err = poll_until(&readiness, &id(), "group deleted", || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 1 {
                // Shutdown arrives during the second check; the pause after it is cut short.
                cancel.cancel();
            }
            Ok::<Poll<()>, _>(Poll::Pending)
        })
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                ProvisionError::Interrupted {
                    what: "group deleted",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Only the first pause (0.5 s) elapsed, not the 10 s deadline.
        assert_eq!(started.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_does_not_even_check() {
        let readiness = readiness();
        readiness.cancel.cancel();
        let err = poll_until::<(), _, _>(&readiness, &id(), "ready", || async {
            panic!("checked after shutdown")
        })
        .await
        .unwrap_err();
        assert!(matches!(err, ProvisionError::Interrupted { .. }), "{err:?}");
    }

    #[test]
    fn set_deltas_name_additions_and_removals() {
        let d = SetDelta::between(["a", "b", "c"], ["c", "d"]);
        assert_eq!(d.add, vec!["a", "b"]);
        assert_eq!(d.remove, vec!["d"]);
        assert_eq!(d.adds(), Some(vec!["a".to_string(), "b".to_string()]));
        let same = SetDelta::between(["a"], ["a"]);
        assert!(same.is_empty());
        assert_eq!((same.adds(), same.removes()), (None, None));
    }

    fn unique_names<F: FieldName>() {
        let names: BTreeSet<&str> = F::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), F::ALL.len(), "{:?}", F::ALL);
        for f in F::ALL {
            assert_eq!(F::from_name(f.name()), Some(*f));
        }
    }

    #[test]
    fn every_kind_names_its_fields_once() {
        unique_names::<super::super::kms::KeyField>();
        unique_names::<super::super::queue::QueueField>();
        unique_names::<super::super::table::TableField>();
        unique_names::<super::super::alarm::AlarmField>();
        unique_names::<super::super::dashboard::DashboardField>();
        unique_names::<super::super::launch_template::TemplateField>();
        unique_names::<super::super::asg::GroupField>();
        unique_names::<super::super::vpc::VpcField>();
        unique_names::<super::super::subnet::SubnetField>();
        unique_names::<super::super::endpoint::EndpointField>();
        unique_names::<super::super::topic::TopicField>();
        unique_names::<super::super::security_group::GroupRuleField>();
        unique_names::<super::super::managed_policy::PolicyField>();
        unique_names::<super::super::iam_role::RoleField>();
        unique_names::<super::super::instance_profile::ProfileField>();
    }
}
