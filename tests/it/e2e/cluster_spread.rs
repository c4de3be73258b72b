//! Many tenants on a real 3-primary Redis Cluster with 16 partitions: the primaries share the commands evenly.

use std::{collections::BTreeMap, time::Instant};

use futures::{StreamExt, stream};
use serde_json::json;
use wgate_queue::{RedisMode, RedisTls};
use wgate_testkit::RedisCluster;

use super::helpers::{RedisTarget, Stack, StackOptions};

const TENANTS: usize = 300;

/// Commands each primary has run so far (`INFO commandstats`, every command's `calls` summed).
async fn commands_per_primary(cluster: &mut RedisCluster) -> BTreeMap<u16, u64> {
    let mut out = BTreeMap::new();
    for port in cluster.primaries().await.expect("the cluster's primaries") {
        let node = cluster.node(port).expect("a primary's node");
        let mut c = node.client().expect("client").get_multiplexed_async_connection().await.expect("connection");
        let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.expect("INFO");
        let calls = info
            .lines()
            .filter(|l| l.starts_with("cmdstat_"))
            .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
            .sum();
        out.insert(port, calls);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_300_tenants_no_primary_of_a_3_primary_cluster_carries_more_than_1_5x_the_mean_of_commands() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let target = RedisTarget { url: cluster.url(), tls: RedisTls::default(), mode: RedisMode::Cluster };
    let stack = Stack::start_on(StackOptions::default(), target).await;
    assert_eq!(stack.store.layout().count(), 16);

    let before = commands_per_primary(&mut cluster).await;
    let started = Instant::now();
    let answers: Vec<u16> = stream::iter(0..TENANTS)
        .map(|i| {
            let stack = &stack;
            async move { stack.create(&format!("tenant-{i}"), &json!({"name": "Spread"}), &[]).await.status().as_u16() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let took = started.elapsed();
    let after = commands_per_primary(&mut cluster).await;
    assert!(answers.iter().all(|s| *s == 200), "every synchronous create succeeded: {answers:?}");

    let carried: Vec<(u16, u64)> =
        after.iter().map(|(port, n)| (*port, n.saturating_sub(before.get(port).copied().unwrap_or(0)))).collect();
    let total: u64 = carried.iter().map(|(_, n)| n).sum();
    let mean = total as f64 / carried.len() as f64;
    let max = carried.iter().map(|(_, n)| *n).max().unwrap_or(0) as f64;
    eprintln!(
        "commands per primary for {TENANTS} tenants' synchronous creates ({took:?}): {} (mean {mean:.0}, max/mean {:.2})",
        carried.iter().map(|(port, n)| format!("{port}: {n}")).collect::<Vec<_>>().join(", "),
        max / mean
    );
    assert_eq!(carried.len(), 3, "three primaries");
    assert!(max <= 1.5 * mean, "no primary carries more than 1.5x the mean: {carried:?}");
    stack.assert_queue_drained().await;
}
