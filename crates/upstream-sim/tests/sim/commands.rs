//! The `/api/v1` commands: shapes, key check, validation, paging and filters.

use serde_json::json;
use wgate_upstream_sim::SimConfig;

use crate::helpers::{KEY, TestSim, is_whatsgate_date, test_config};

const SESSION_KEYS: [&str; 11] =
    ["id", "name", "unique_id", "status", "callback", "date_add", "qr", "status_name", "pushname", "wid", "qr_link"];

#[tokio::test]
async fn session_create_answers_the_documented_session_object() {
    let sim = TestSim::start().await;
    let answer = sim.create(json!({ "name": "My WhatsApp", "callback": "https://callback.my/script.handler" })).await;
    let data = answer.data();
    let keys: Vec<&str> = data.as_object().expect("an object").keys().map(String::as_str).collect();
    let mut expected = SESSION_KEYS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "exactly the documented keys (and no code in QR mode)");
    assert_eq!(data["id"], 1);
    assert_eq!(data["name"], "My WhatsApp");
    let unique_id = data["unique_id"].as_str().expect("a string");
    assert_eq!(unique_id.len(), 13);
    assert!(unique_id.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(data["status"], "PENDING");
    assert_eq!(data["status_name"], "Инициализация");
    assert_eq!(data["callback"], "https://callback.my/script.handler");
    assert!(is_whatsgate_date(data["date_add"].as_str().expect("date_add")), "{}", data["date_add"]);
    assert!(data["qr"].is_null() && data["pushname"].is_null() && data["wid"].is_null());
    assert_eq!(data["qr_link"], format!("{}/qr/{unique_id}", sim.base));
    // The keys come in the documented order.
    let positions: Vec<usize> =
        SESSION_KEYS.iter().map(|k| answer.text.find(&format!("\"{k}\":")).expect("key present")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{}", answer.text);
    assert!(answer.text.starts_with(r#"{"result":"OK","data":{"id":1,"#), "{}", answer.text);
}

#[tokio::test]
async fn ids_increase_from_one_and_unique_ids_differ() {
    let sim = TestSim::start().await;
    let first = sim.create(json!({ "name": "a" })).await;
    let second = sim.create(json!({ "name": "a" })).await;
    assert_eq!(first.data()["id"], 1);
    assert_eq!(second.data()["id"], 2);
    assert_ne!(first.unique_id(), second.unique_id());
    assert!(second.data()["callback"].is_null(), "callback is null when absent");
}

#[tokio::test]
async fn a_code_session_carries_a_pairing_code() {
    let sim = TestSim::start().await;
    let answer =
        sim.create(json!({ "name": "n", "callback": "http://x", "auth_type": "CODE", "number": "79999999999" })).await;
    let data = answer.data();
    let code = data["code"].as_str().expect("a code in CODE mode");
    assert_eq!(code.len(), 9, "{code}");
    assert!(code[..4].bytes().all(|b| b.is_ascii_uppercase()) && &code[4..5] == "-", "{code}");
    assert!(code[5..].bytes().all(|b| b.is_ascii_digit()), "{code}");
    assert!(data["qr"].is_null());
    assert_eq!(data["status"], "PENDING");
    let qr_mode = sim.create(json!({ "name": "n", "auth_type": "QR" })).await;
    assert!(qr_mode.data().get("code").is_none(), "no code key in QR mode");
}

#[tokio::test]
async fn a_missing_or_wrong_api_key_is_unauthorized_on_every_command() {
    let sim = TestSim::start().await;
    for command in ["session-create", "sessions-get", "session-delete", "set-hook", "set-name", "no-such-command"] {
        let missing = sim.command_raw(command, None, r#"{"name":"x"}"#).await.expect("answer");
        missing.assert_error("Unauthorized");
        let wrong = sim.command_raw(command, Some("wrong"), r#"{"name":"x"}"#).await.expect("answer");
        wrong.assert_error("Unauthorized");
    }
    let stats = sim.stats().await;
    assert_eq!(stats["create_calls"], 0, "calls without a valid key are not counted");
    assert_eq!(stats["sessions_created"], 0);
}

#[tokio::test]
async fn every_configured_key_is_accepted_and_the_default_key_then_is_not() {
    let sim = TestSim::start_with(SimConfig { api_keys: vec!["k1".into(), "k2".into()], ..test_config() }).await;
    for key in ["k1", "k2"] {
        let answer = sim.command_raw("sessions-get", Some(key), "{}").await.expect("answer");
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let default = sim.command_raw("sessions-get", Some(KEY), "{}").await.expect("answer");
    default.assert_error("Unauthorized");
}

#[tokio::test]
async fn an_unknown_command_is_an_unknown_command_error() {
    let sim = TestSim::start().await;
    sim.command("session-explode", json!({})).await.assert_error("UnknownCommand");
}

#[tokio::test]
async fn invalid_session_create_bodies_are_validation_errors_and_create_nothing() {
    let sim = TestSim::start().await;
    let bodies = [
        "",
        "not json",
        "[]",
        "{}",
        r#"{"name":""}"#,
        r#"{"name":"   "}"#,
        r#"{"name":7}"#,
        r#"{"name":"n","auth_type":"CODE"}"#,
        r#"{"name":"n","auth_type":"CODE","number":"+7999"}"#,
        r#"{"name":"n","number":"79x"}"#,
        r#"{"name":"n","auth_type":"SMS","number":"79999999999"}"#,
    ];
    for body in bodies {
        let answer = sim.command_raw("session-create", Some(KEY), body).await.expect("answer");
        answer.assert_error("ValidationError");
    }
    let stats = sim.stats().await;
    assert_eq!(stats["sessions_created"], 0);
    assert_eq!(stats["create_calls"], bodies.len(), "every call past the key check is counted");
}

#[tokio::test]
async fn sessions_get_pages_over_all_sessions_in_id_order() {
    let sim = TestSim::start().await;
    for name in ["a", "b", "a", "c", "a"] {
        sim.create_named(name).await;
    }
    let all = sim.sessions_get(json!({})).await;
    assert_eq!((&all.json["pages"], &all.json["elements"], &all.json["page"]), (&json!(1), &json!(5), &json!(1)));
    let ids: Vec<u64> = all.data().as_array().expect("list").iter().map(|s| s["id"].as_u64().expect("id")).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    for key in ["id", "unique_id", "status", "callback", "qr", "status_name", "qr_link", "date_add"] {
        assert!(all.data()[0].get(key).is_some(), "sessions carry {key}");
    }

    let page = sim.sessions_get(json!({ "page_cnt": 2, "page": 3 })).await;
    assert_eq!((&page.json["pages"], &page.json["elements"], &page.json["page"]), (&json!(3), &json!(5), &json!(3)));
    assert_eq!(page.data().as_array().map(Vec::len), Some(1));
    assert_eq!(page.data()[0]["id"], 5);

    let as_text = sim.sessions_get(json!({ "page_cnt": "2", "page": "2" })).await;
    let ids: Vec<&serde_json::Value> = as_text.data().as_array().expect("list").iter().map(|s| &s["id"]).collect();
    assert_eq!(ids, [&json!(3), &json!(4)], "numbers written as strings are accepted");

    let beyond = sim.sessions_get(json!({ "page_cnt": 2, "page": 9 })).await;
    assert_eq!(beyond.data(), &json!([]));
    assert_eq!(beyond.json["elements"], 5);
}

#[tokio::test]
async fn sessions_get_filters_by_name_status_and_whatsapp_id() {
    // Sessions stay PENDING for the whole test, so the status filter has a stable answer.
    let sim = TestSim::start_with(SimConfig { init_ms: 60_000, ..test_config() }).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "a", "c", "a"] {
        ids.push(sim.create_named(name).await);
    }
    let named = sim.sessions_get(json!({ "name": "a", "page_cnt": 2 })).await;
    assert_eq!((&named.json["pages"], &named.json["elements"]), (&json!(2), &json!(3)));
    let got: Vec<&serde_json::Value> = named.data().as_array().expect("list").iter().map(|s| &s["id"]).collect();
    assert_eq!(got, [&json!(1), &json!(3)]);

    let one = sim.sessions_get(json!({ "WhatsappID": ids[3] })).await;
    assert_eq!(one.json["elements"], 1);
    assert_eq!(one.data()[0]["name"], "c");
    let mismatch = sim.sessions_get(json!({ "WhatsappID": ids[3], "name": "a" })).await;
    assert_eq!(mismatch.json["elements"], 0);

    sim.scan(&ids[2]).await;
    let ready = sim.sessions_get(json!({ "status": "READY" })).await;
    assert_eq!(ready.json["elements"], 1);
    assert_eq!(ready.data()[0]["unique_id"], ids[2].as_str());
    let ready_a = sim.sessions_get(json!({ "status": "READY", "name": "a" })).await;
    assert_eq!(ready_a.json["elements"], 1);
    let pending = sim.sessions_get(json!({ "status": "PENDING" })).await;
    assert_eq!(pending.json["elements"], 4);

    let none = sim.sessions_get(json!({ "name": "nobody" })).await;
    assert_eq!((&none.json["pages"], &none.json["elements"], none.data()), (&json!(0), &json!(0), &json!([])));
    let unknown = sim.sessions_get(json!({ "WhatsappID": "0000000000000" })).await;
    assert_eq!(unknown.json["elements"], 0);
}

#[tokio::test]
async fn sessions_get_rejects_pages_out_of_range() {
    let sim = TestSim::start().await;
    for body in [json!({ "page_cnt": 0 }), json!({ "page_cnt": 101 }), json!({ "page": 0 }), json!({ "page": "x" })] {
        sim.sessions_get(body).await.assert_error("ValidationError");
    }
    let max = sim.sessions_get(json!({ "page_cnt": 100 })).await;
    assert_eq!(max.status, 200);
}

#[tokio::test]
async fn a_deleted_session_is_destroying_then_gone() {
    let sim = TestSim::start().await;
    let id = sim.create_named("doomed").await;
    let keep = sim.create_named("kept").await;
    let deleted = sim.command("session-delete", json!({ "WhatsappID": id })).await;
    let data = deleted.data();
    assert_eq!((&data["status"], &data["status_name"]), (&json!("DESTROYING"), &json!("Удаление")));
    assert_eq!(data["unique_id"], id.as_str());

    let all = sim.sessions_get(json!({})).await;
    assert_eq!(all.json["elements"], 1);
    assert_eq!(all.data()[0]["unique_id"], keep.as_str());
    assert_eq!(sim.sessions_get(json!({ "WhatsappID": id })).await.json["elements"], 0);

    sim.command("session-delete", json!({ "WhatsappID": id })).await.assert_error("NotFound");
    sim.command("set-name", json!({ "WhatsappID": id, "name": "x" })).await.assert_error("NotFound");
    sim.command("set-hook", json!({ "WhatsappID": id, "callback": "http://x" })).await.assert_error("NotFound");
    let stats = sim.stats().await;
    assert_eq!((&stats["sessions_created"], &stats["sessions_live"]), (&json!(2), &json!(1)));
}

#[tokio::test]
async fn set_hook_and_set_name_change_the_session() {
    let sim = TestSim::start().await;
    let id = sim.create_named("old").await;
    let hooked = sim.command("set-hook", json!({ "WhatsappID": id, "callback": "https://new.example/hook" })).await;
    assert_eq!(hooked.data()["callback"], "https://new.example/hook");
    let renamed = sim.command("set-name", json!({ "WhatsappID": id, "name": "new" })).await;
    assert_eq!(renamed.data()["name"], "new");
    assert_eq!(renamed.data()["callback"], "https://new.example/hook");

    let session = sim.session(&id).await;
    assert_eq!((&session["name"], &session["callback"]), (&json!("new"), &json!("https://new.example/hook")));
    assert_eq!(sim.sessions_get(json!({ "name": "new" })).await.json["elements"], 1);
    assert_eq!(sim.sessions_get(json!({ "name": "old" })).await.json["elements"], 0);
    assert_eq!(sim.stats().await["by_name"], json!({ "old": 1 }), "by_name counts names at creation");

    let cleared = sim.command("set-hook", json!({ "WhatsappID": id, "callback": null })).await;
    assert!(cleared.data()["callback"].is_null());
}

#[tokio::test]
async fn commands_on_one_session_need_a_known_whatsapp_id() {
    let sim = TestSim::start().await;
    for command in ["session-delete", "set-hook", "set-name"] {
        let body = json!({ "callback": "http://x", "name": "x" });
        sim.command(command, body).await.assert_error("ValidationError");
        let body = json!({ "WhatsappID": "1234567890123", "callback": "http://x", "name": "x" });
        sim.command(command, body).await.assert_error("NotFound");
        let body = json!({ "WhatsappID": "nope", "callback": "http://x", "name": "x" });
        sim.command(command, body).await.assert_error("NotFound");
    }
    let id = sim.create_named("n").await;
    sim.command("set-name", json!({ "WhatsappID": id, "name": "" })).await.assert_error("ValidationError");
    sim.command("set-hook", json!({ "WhatsappID": id })).await.assert_error("ValidationError");
}

#[tokio::test]
async fn stats_count_calls_and_sessions_per_name_and_reset_clears_them() {
    let sim = TestSim::start().await;
    sim.create_named("a").await;
    sim.create_named("a").await;
    sim.create_named("b").await;
    let stats = sim.stats().await;
    assert_eq!(stats["create_calls"], 3);
    assert_eq!(stats["sessions_created"], 3);
    assert_eq!(stats["sessions_live"], 3);
    assert_eq!(stats["by_name"], json!({ "a": 2, "b": 1 }));
    assert_eq!(stats["webhooks_delivered"], 0);
    assert_eq!(stats["webhook_attempts"], 0);

    assert_eq!(sim.post("/sim/reset", json!({})).await.status, 200);
    let stats = sim.stats().await;
    assert_eq!((&stats["create_calls"], &stats["sessions_live"]), (&json!(0), &json!(0)));
    assert_eq!(stats["by_name"], json!({}));
    assert_eq!(sim.sessions_get(json!({})).await.json["elements"], 0);
    assert_eq!(sim.create(json!({ "name": "again" })).await.data()["id"], 1, "ids start over");
}
