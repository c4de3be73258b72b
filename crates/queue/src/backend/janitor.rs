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
    // With several partitions their streams are trimmed once a second rather than at every promotion round:
    // trimming only gives memory back, and the idle cost of housekeeping grows with the partitions.
    let trim_every = if stores.len() > 1 { Duration::from_secs(1) } else { Duration::ZERO };
    let mut next_trim = Instant::now();
    let mut failing = false;
    loop {
        let (refresh, vacuum) = (Instant::now() >= next_refresh, Instant::now() >= next_vacuum);
        let trim = Instant::now() >= next_trim;
        if trim {
            next_trim = Instant::now() + trim_every;
        }
        if refresh {
            next_refresh = Instant::now() + config.refresh_every;
        }
        if vacuum {
            next_vacuum = Instant::now() + Duration::from_secs(60);
        }
        // Every partition's housekeeping; the first failure is reported, the other partitions still get theirs.
        let mut result = Ok(());
        for store in &stores {
            let r = housekeep(&shared, store, Rounds { trim, refresh, vacuum }).await;
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

/// Which of the less frequent chores are due this round.
#[derive(Clone, Copy)]
struct Rounds {
    trim: bool,
    refresh: bool,
    vacuum: bool,
}

/// One partition's round: due retries promoted, and when due its acked entries trimmed, its in-flight entries
/// refreshed and its idle consumers vacuumed.
async fn housekeep(shared: &Shared, store: &crate::JobStore, due: Rounds) -> Result<(), crate::QueueError> {
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
        && due.trim
        && let Err(e) = store.trim().await
    {
        result = Err(e);
    }
    if result.is_ok() && due.refresh {
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
    if result.is_ok() && due.vacuum {
        result = store.vacuum(config.consumer_idle).await;
    }
    result
}
