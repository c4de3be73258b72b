//! The janitor: due retries promoted, acked entries trimmed, this consumer's in-flight entries kept alive, idle
//! empty consumers removed.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::Shared;

pub(super) async fn janitor_loop(shared: Arc<Shared>) {
    let stores: Vec<_> = shared.store.partitions().collect();
    let config = shared.config.clone();
    let mut next_refresh = Instant::now() + config.refresh_every;
    let mut next_vacuum = Instant::now() + Duration::from_secs(5);
    let mut failing = false;
    loop {
        let (refresh, vacuum) = (Instant::now() >= next_refresh, Instant::now() >= next_vacuum);
        if refresh {
            next_refresh = Instant::now() + config.refresh_every;
        }
        if vacuum {
            next_vacuum = Instant::now() + Duration::from_secs(60);
        }
        // Every partition's housekeeping; the first failure is reported, the other partitions still get theirs.
        let mut result = Ok(());
        for store in &stores {
            let r = housekeep(&shared, store, refresh, vacuum).await;
            if result.is_ok() {
                result = r;
            }
        }
        match result {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "queue housekeeping failed; retrying");
            }
            Err(_) => {}
        }
        if !shared.pause(config.promote_every).await {
            break;
        }
    }
}

/// One partition's round: due retries promoted, acked entries trimmed, and when due its in-flight entries
/// refreshed and its idle consumers vacuumed.
async fn housekeep(
    shared: &Shared,
    store: &crate::JobStore,
    refresh: bool,
    vacuum: bool,
) -> Result<(), crate::QueueError> {
    let config = &shared.config;
    let mut result = Ok(());
    loop {
        match store.promote_due(config.promote_batch).await {
            Ok(n) if n >= config.promote_batch => continue,
            Ok(_) => break,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok()
        && let Err(e) = store.trim().await
    {
        result = Err(e);
    }
    if result.is_ok() && refresh {
        let p = store.partition();
        let ids: Vec<String> = shared.in_flight().iter().filter(|(q, _)| *q == p).map(|(_, id)| id.clone()).collect();
        match store.refresh(&config.consumer, &ids).await {
            Ok(lost) => {
                for id in lost {
                    tracing::warn!(entry.id = %id, "an in-flight job was taken over by another worker");
                }
            }
            Err(e) => result = Err(e),
        }
    }
    if result.is_ok() && vacuum {
        result = store.vacuum(config.consumer_idle).await;
    }
    result
}
