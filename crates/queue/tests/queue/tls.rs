//! The job store and the completion subscription over TLS, against a real `redis-server --tls-port` whose
//! certificates the test makes with openssl.

use std::{sync::Arc, time::Duration};

use redis::AsyncCommands;
use serde_json::json;
use wgate_queue::{Completions, Enqueued, JobStore, QueueConfig, QueueError, RedisTls};
use wgate_testkit::{RedisServer, RedisTlsOptions, TestCertificates, unique_namespace};
use wgate_types::JobId;

use crate::helpers::{job, within};

async fn tls_server(require_client_cert: bool) -> (Arc<TestCertificates>, RedisServer) {
    let certs = Arc::new(TestCertificates::generate());
    let server = RedisServer::start_tls(RedisTlsOptions { certs: certs.clone(), require_client_cert }).await;
    (certs, server)
}

fn config(server: &RedisServer, tls: RedisTls) -> QueueConfig {
    let mut config = QueueConfig::new(server.url(), unique_namespace("tls"));
    config.tls = tls;
    config
}

fn mutual(certs: &TestCertificates) -> RedisTls {
    RedisTls {
        ca_file: Some(certs.ca_cert()),
        client_cert: Some(certs.client_cert()),
        client_key: Some(certs.client_key()),
    }
}

#[tokio::test]
async fn over_mutual_tls_jobs_are_stored_read_and_their_completion_wakes_a_waiter() {
    let (certs, server) = tls_server(true).await;
    let config = config(&server, mutual(&certs));
    let store = JobStore::new(config.clone()).unwrap();
    store.ping().await.unwrap();
    let j = job("acme", json!({"name":"Shop"}));
    assert_eq!(store.enqueue(&j, None, None).await.unwrap(), Enqueued::Created);
    assert_eq!(store.find(j.id).await.unwrap(), Some(j.clone()));

    let done = format!("{{{}}}:done", config.namespace);
    let mut c = server.connection().await;
    let completions = Completions::start(&config);
    within("the completion subscription over TLS", Duration::from_secs(5), async {
        loop {
            // A (re)subscription wakes every waiter; one that registers just after it waits for the next wake,
            // so each wait is short and the subscriber count says whether the subscription is there.
            let _ = tokio::time::timeout(Duration::from_millis(200), completions.waiter(JobId::new())).await;
            let subs: Vec<(String, i64)> =
                redis::cmd("PUBSUB").arg("NUMSUB").arg(&done).query_async(&mut c).await.unwrap();
            if subs[0].1 == 1 {
                break;
            }
        }
    })
    .await;
    let waiter = completions.waiter(j.id);
    let _: () = c.publish(&done, j.id.to_string()).await.unwrap();
    within("the waiter wakes on a completion published over TLS", Duration::from_secs(2), waiter).await;
}

#[tokio::test]
async fn a_private_ca_alone_is_enough_when_the_server_does_not_ask_for_a_client_certificate() {
    let (certs, server) = tls_server(false).await;
    let tls = RedisTls { ca_file: Some(certs.ca_cert()), ..RedisTls::default() };
    let store = JobStore::new(config(&server, tls)).unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn without_a_client_certificate_a_server_requiring_one_is_unavailable_within_the_timeout() {
    let (certs, server) = tls_server(true).await;
    let tls = RedisTls { ca_file: Some(certs.ca_cert()), ..RedisTls::default() };
    let store = JobStore::new(config(&server, tls)).unwrap();
    let err = within("the refused handshake to fail", Duration::from_secs(5), store.ping()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test]
async fn a_server_certificate_signed_by_another_ca_is_refused() {
    let (certs, server) = tls_server(true).await;
    let stranger = TestCertificates::generate();
    let tls = RedisTls { ca_file: Some(stranger.ca_cert()), ..mutual(&certs) };
    let store = JobStore::new(config(&server, tls)).unwrap();
    let err = within("the untrusted server to be refused", Duration::from_secs(5), store.ping()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    // The system's CA store does not trust the private CA either.
    let store = JobStore::new(config(&server, RedisTls::default())).unwrap();
    assert!(within("refused", Duration::from_secs(5), store.ping()).await.is_err());
}

fn config_error(config: QueueConfig) -> String {
    match JobStore::new(config) {
        Err(QueueError::Config(m)) => m,
        Err(e) => panic!("expected a configuration error, got {e:?}"),
        Ok(_) => panic!("expected a configuration error, the store was built"),
    }
}

#[tokio::test]
async fn tls_files_that_cannot_work_are_refused_at_start_with_the_setting_named() {
    let certs = TestCertificates::generate();
    let plain = QueueConfig { tls: mutual(&certs), ..QueueConfig::new("redis://:hunter2@127.0.0.1:1", "ns") };
    let m = config_error(plain);
    assert!(m.contains("rediss://") && m.contains("WGATE_REDIS_CA_FILE") && !m.contains("hunter2"), "{m}");

    let tls_url = |tls: RedisTls| QueueConfig { tls, ..QueueConfig::new("rediss://127.0.0.1:1", "ns") };
    let m = config_error(tls_url(RedisTls { client_key: None, ..mutual(&certs) }));
    assert!(m.contains("WGATE_REDIS_CLIENT_KEY") && m.contains("both"), "{m}");

    let missing = certs.ca_cert().with_file_name("nowhere.crt");
    let m = config_error(tls_url(RedisTls { ca_file: Some(missing), ..RedisTls::default() }));
    assert!(m.contains("WGATE_REDIS_CA_FILE") && m.contains("nowhere.crt"), "{m}");

    // A key given as the CA holds no certificate.
    let m = config_error(tls_url(RedisTls { ca_file: Some(certs.client_key()), ..RedisTls::default() }));
    assert!(m.contains("WGATE_REDIS_CA_FILE") && m.contains("no PEM certificate"), "{m}");

    // A certificate given as the key is not a key.
    let m = config_error(tls_url(RedisTls { client_key: Some(certs.client_cert()), ..mutual(&certs) }));
    assert!(m.contains("WGATE_REDIS_CLIENT_KEY"), "{m}");
}
