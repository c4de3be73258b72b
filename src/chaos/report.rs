//! What a chaos run did and found, and the verdict table.

use std::time::Duration;

use super::ChaosArgs;

/// What a run did and found. `violations()` is empty when every guarantee held.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub jobs: usize,
    pub accepted: usize,
    /// Submissions never accepted (retried with the same `Idempotency-Key` until the window's end plus 15 s).
    pub refused: usize,
    /// Answers other than an accepted job that made a submission try again (503 while Redis was down, ...).
    pub submit_retries: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub dead: usize,
    /// Accepted, but at the deadline still not terminal.
    pub non_terminal: usize,
    /// Accepted, but the API no longer knows the job (404).
    pub missing: usize,
    pub accepted_before_redis_restart: usize,
    pub lost_of_those: usize,
    pub max_sessions_per_job: u64,
    pub jobs_with_more_than_one_session: usize,
    pub succeeded_without_session: usize,
    /// Sessions upstream that no succeeded job owns (its answer's `unique_id`): created by wgate, owned by nobody.
    pub orphaned_sessions: usize,
    /// Sessions upstream that more than one succeeded job claims.
    pub sessions_owned_twice: usize,
    /// Sessions upstream under names whose submission was never accepted.
    pub sessions_of_refused: u64,
    pub create_calls: u64,
    pub sessions_created: u64,
    pub worker_kills: usize,
    /// Jobs the killed workers had in flight at the moment of each kill (`wgate_worker_busy`).
    pub in_flight_at_kills: u64,
    pub worker_processes: usize,
    /// Workers that exited without being killed.
    pub workers_died: usize,
    pub redis_restarts: usize,
    /// Stream entries and retries still queued or running once every job was terminal (`None`: not read).
    pub left_in_queue: Option<u64>,
    /// Webhook events posted to the gateway, acknowledged (`{"result":"OK","id":n}`), and delivered (2xx).
    pub events: usize,
    pub events_acknowledged: usize,
    pub events_delivered: usize,
    /// Acknowledged to WhatsGate, never delivered.
    pub events_lost: usize,
    /// Events whose attempts carried more than one `webhook-id`.
    pub events_with_several_ids: usize,
    pub event_post_retries: usize,
    pub endpoint_requests: usize,
    pub endpoint_failures: usize,
    pub elapsed: Duration,
}

impl Report {
    /// Jobs accepted and not terminal, or gone.
    pub fn lost(&self) -> usize {
        self.non_terminal + self.missing
    }

    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.lost() > 0 {
            v.push(format!(
                "{} accepted jobs lost ({} not terminal, {} missing)",
                self.lost(),
                self.non_terminal,
                self.missing
            ));
        }
        if self.jobs_with_more_than_one_session > 0 {
            v.push(format!(
                "{} jobs made more than one upstream session (at most {})",
                self.jobs_with_more_than_one_session, self.max_sessions_per_job
            ));
        }
        if self.orphaned_sessions > 0 {
            v.push(format!("{} upstream sessions are owned by no job (orphans)", self.orphaned_sessions));
        }
        if self.sessions_owned_twice > 0 {
            v.push(format!("{} upstream sessions are owned by more than one job", self.sessions_owned_twice));
        }
        if self.succeeded_without_session > 0 {
            v.push(format!("{} jobs succeeded without an upstream session", self.succeeded_without_session));
        }
        if self.refused > 0 {
            v.push(format!("{} submissions were never accepted", self.refused));
        }
        if self.events_lost > 0 {
            v.push(format!("{} webhook events acknowledged to WhatsGate were never delivered", self.events_lost));
        }
        if self.events_acknowledged < self.events {
            v.push(format!("{} webhook events were never acknowledged", self.events - self.events_acknowledged));
        }
        if self.events_with_several_ids > 0 {
            v.push(format!("{} webhook events went out under more than one webhook-id", self.events_with_several_ids));
        }
        if self.workers_died > 0 {
            v.push(format!("{} worker processes exited on their own", self.workers_died));
        }
        match self.left_in_queue {
            Some(0) => {}
            Some(n) => v.push(format!("{n} entries left queued or running after every job was terminal")),
            None if self.lost() == 0 => v.push("the queue's counts could not be read at the end".to_owned()),
            None => {}
        }
        v
    }

    /// A markdown table of the counts, then what was checked.
    pub fn to_markdown(&self, args: &ChaosArgs) -> String {
        let rows: Vec<(&str, String)> = vec![
            ("jobs submitted", self.jobs.to_string()),
            ("accepted (202 with a job id)", self.accepted.to_string()),
            ("never accepted", self.refused.to_string()),
            ("submission retries (503 while Redis was down, ...)", self.submit_retries.to_string()),
            ("succeeded", self.succeeded.to_string()),
            ("failed", self.failed.to_string()),
            ("dead (attempts used up)", self.dead.to_string()),
            ("**lost** (accepted, then missing or not terminal)", format!("**{}**", self.lost())),
            (
                "accepted before the Redis restart / lost of those",
                format!("{} / {}", self.accepted_before_redis_restart, self.lost_of_those),
            ),
            ("**upstream sessions per job, max**", format!("**{}**", self.max_sessions_per_job)),
            ("jobs with more than one session", self.jobs_with_more_than_one_session.to_string()),
            ("succeeded without a session", self.succeeded_without_session.to_string()),
            ("**orphaned upstream sessions** (no job owns them)", format!("**{}**", self.orphaned_sessions)),
            ("upstream sessions owned by more than one job", self.sessions_owned_twice.to_string()),
            ("sessions under never-accepted names", self.sessions_of_refused.to_string()),
            ("simulator create calls / sessions created", format!("{} / {}", self.create_calls, self.sessions_created)),
            (
                "worker SIGKILLs (jobs in flight in the killed workers)",
                format!("{} ({})", self.worker_kills, self.in_flight_at_kills),
            ),
            (
                "worker processes started / exited on their own",
                format!("{} / {}", self.worker_processes, self.workers_died),
            ),
            ("redis-server SIGKILL + restart (AOF)", self.redis_restarts.to_string()),
            (
                "queue entries left after the end",
                self.left_in_queue.map_or_else(|| "not read".to_owned(), |n| n.to_string()),
            ),
            (
                "webhook events posted / acknowledged / delivered",
                format!("{} / {} / {}", self.events, self.events_acknowledged, self.events_delivered),
            ),
            ("**webhook events lost** (acknowledged, never delivered)", format!("**{}**", self.events_lost)),
            ("webhook events under more than one webhook-id", self.events_with_several_ids.to_string()),
            (
                "event posts retried / endpoint requests (failed by the endpoint)",
                format!("{} / {} ({})", self.event_post_retries, self.endpoint_requests, self.endpoint_failures),
            ),
            ("wall time", format!("{:.1} s", self.elapsed.as_secs_f64())),
        ];
        let mut out = String::from("| measure | count |\n| --- | --- |\n");
        for (k, v) in rows {
            out.push_str(&format!("| {k} | {v} |\n"));
        }
        out.push_str(&format!(
            "\nFaults on session-create: error {}, throttle {}, timeout {}, ambiguous {} (seed {}), simulator \
             latency {} ms; {} worker processes x concurrency {}, max attempts {}, upstream timeout {} ms, visibility timeout {} ms.\n",
            args.error_rate,
            args.throttle_rate,
            args.timeout_rate,
            args.ambiguous_rate,
            args.seed,
            args.sim_latency_ms,
            args.workers,
            args.worker_concurrency,
            args.max_attempts,
            args.upstream_timeout_ms,
            args.visibility_timeout_ms,
        ));
        out.push_str(
            "Verified: every job the API acknowledged (202 + X-Job-Id) is terminal (succeeded, failed or dead) and \
             readable through GET /api/v1/jobs/{id}; the simulator holds at most one session per job name (every \
             job has its own name) and one for each succeeded job; every session in the simulator is the \
             `unique_id` of exactly one succeeded job (no orphan); no stream entry or retry is left; no worker died \
             unasked. redis-server runs with appendfsync always, so its restart keeps every write it acknowledged: \
             this run checks that the gateway acknowledges nothing Redis has not stored and recovers from the \
             restart (reconnects, takes over the killed workers' jobs), not a Redis that loses acknowledged \
             writes. Webhook events: every event the gateway answered {\"result\":\"OK\"} was delivered (2xx) to \
             the tenant endpoint, which failed most requests, through the same worker kills and Redis restart, each \
             under one webhook-id.\n",
        );
        out
    }
}
