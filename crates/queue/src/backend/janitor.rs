//! The janitor: due retries promoted, acked entries trimmed, this consumer's in-flight entries kept alive, idle
//! empty consumers removed.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::Shared;

pub(super) async fn janitor_loop(shared: Arc<Shared>) {
    let store = shared.store.clone();
    let config = shared.config.clone();
    let mut next_refresh = Instant::now() + config.refresh_every;
    let mut next_vacuum = Instant::now() + Duration::from_secs(5);
    let mut failing = false;
    loop {
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
        if result.is_ok() && Instant::now() >= next_refresh {
            next_refresh = Instant::now() + config.refresh_every;
            let ids: Vec<String> = shared.in_flight().iter().cloned().collect();
            match store.refresh(&config.consumer, &ids).await {
                Ok(lost) => {
                    for id in lost {
                        tracing::warn!(entry.id = %id, "an in-flight job was taken over by another worker");
                    }
                }
                Err(e) => result = Err(e),
            }
        }
        if result.is_ok() && Instant::now() >= next_vacuum {
            next_vacuum = Instant::now() + Duration::from_secs(60);
            result = store.vacuum(config.consumer_idle).await;
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
