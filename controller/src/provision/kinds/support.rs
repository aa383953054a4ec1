//! Helpers every kind shares.

use std::time::Instant;

use ballast_blueprint::ResourceId;

use super::{ApplyContext, Observed};
use crate::provision::error::ProvisionError;
use crate::provision::state::{LiveState, Ownership};

pub(crate) fn removed_or_live(observed: &mut Observed, live: LiveState, declared: bool) {
    if declared {
        observed.live.push(live);
    } else if live.ownership == Ownership::Owned {
        observed.removed.push(live);
    }
}

pub(crate) async fn wait_until<F, Fut>(
    ctx: &ApplyContext<'_>,
    id: &ResourceId,
    what: &'static str,
    mut check: F,
) -> Result<(), ProvisionError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, ProvisionError>>,
{
    let started = Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        if started.elapsed() > ctx.readiness.timeout {
            return Err(ProvisionError::NotReady {
                resource: id.clone(),
                what,
                waited_secs: started.elapsed().as_secs(),
            });
        }
        tokio::time::sleep(ctx.readiness.poll).await;
    }
}
