//! Shutdown: SIGINT (Ctrl-C) or SIGTERM cancel one [`CancellationToken`] that every task of
//! the process watches. Nothing else stops the process gracefully, so there is exactly one
//! place that turns a signal into a drain.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Waits for SIGINT or SIGTERM, then cancels `shutdown`. Returns early, without cancelling,
/// when `shutdown` is cancelled by someone else (the command finished on its own).
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    tokio::select! {
        () = signal() => {
            tracing::info!("signal received: shutting down");
            shutdown.cancel();
        }
        () = shutdown.cancelled() => {}
    }
}

/// Spawns [`cancel_on_signal`] on the current runtime.
pub fn spawn_signal_handler(shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(cancel_on_signal(shutdown))
}

/// Completes on the first SIGINT or SIGTERM. If SIGTERM cannot be listened to (it always can
/// on Unix, short of resource exhaustion), Ctrl-C alone still works and the failure is logged.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    ctrl_c().await;
}

async fn ctrl_c() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        // Without a signal handler the process can only be killed; never cancel on this, or a
        // worker would drain the moment it started.
        tracing::warn!(%error, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sigterm_cancels_the_token() {
        let shutdown = CancellationToken::new();
        let handler = spawn_signal_handler(shutdown.clone());
        // The handler must have installed its SIGTERM listener before the signal is sent:
        // retry the signal until the token is cancelled (an unhandled SIGTERM before that
        // would kill the test process, so install a listener of our own first).
        let mut own =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        let pid = std::process::id().to_string();
        for _ in 0..100 {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            assert!(status.success());
            own.recv().await;
            if tokio::time::timeout(Duration::from_millis(50), shutdown.cancelled())
                .await
                .is_ok()
            {
                break;
            }
        }
        assert!(shutdown.is_cancelled());
        handler.await.unwrap();
    }

    #[tokio::test]
    async fn the_handler_ends_when_the_token_is_cancelled_elsewhere() {
        let shutdown = CancellationToken::new();
        let handler = spawn_signal_handler(shutdown.clone());
        shutdown.cancel();
        handler.await.unwrap();
    }
}
