//! The messaging commands (`send`, `check`, `get-chats`, `seen`, `typing`, `get-media`) on both base paths,
//! the events that follow a send, incoming messages and files, and a device that logs out.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{Receiver, TestSim, eventually};

/// `ResponseMessage`'s keys, in the SDKs' order.
const MESSAGE_KEYS: [&str; 10] =
    ["id", "ack", "has_media", "media_key", "body", "type", "timestamp", "from", "to", "is_forwarded"];

fn text_to(number: &str, body: &str) -> Value {
    json!({ "recipient": { "number": number }, "message": { "type": "text", "body": body } })
}

fn with_session(id: &str, mut body: Value) -> Value {
    body["WhatsappID"] = json!(id);
    body
}

fn assert_message_keys(text: &str, message: &Value) {
    let keys: Vec<&str> = message.as_object().expect("a message object").keys().map(String::as_str).collect();
    let mut expected = MESSAGE_KEYS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "{text}");
    let positions: Vec<usize> =
        MESSAGE_KEYS.iter().map(|k| text.find(&format!("\"{k}\":")).expect("key present")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "keys in the documented order: {text}");
}

#[tokio::test]
async fn a_synchronous_send_answers_the_sent_message_and_is_followed_by_an_ack_webhook() {
    let sim = TestSim::start().await;
    let mut receiver = Receiver::start(vec![]).await;
    let (id, wid) = sim.ready_session(Some(&receiver.url)).await;
    assert_eq!(receiver.next().await["event_action"], "ready");

    let mut body = with_session(&id, text_to("79990001122", "Hello"));
    body["async"] = json!(false);
    let answer = sim.command("send", body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let message = &answer.json["result"];
    assert_message_keys(&answer.text, message);
    assert!(message["id"].as_str().is_some_and(|m| m.starts_with("true_79990001122@c.us_")), "{message}");
    assert_eq!(message["ack"], 1);
    assert_eq!(message["has_media"], false);
    assert!(message["media_key"].is_null());
    assert_eq!(message["body"], "Hello");
    assert_eq!(message["type"], "chat");
    assert!(message["timestamp"].as_i64().is_some_and(|t| t > 1_600_000_000), "{message}");
    assert_eq!(message["from"], wid.as_str());
    assert_eq!(message["to"], "79990001122@c.us");
    assert_eq!(message["is_forwarded"], false);

    let ack = receiver.next().await;
    assert_eq!(ack["event_action"], "ack", "a synchronous send has no sent event: {ack}");
    assert_eq!(ack["whatsapp_id"], id.as_str());
    assert_eq!(ack["event_data"]["id"], message["id"]);
    assert_eq!(ack["event_data"]["ack"], 2, "delivered to the device");

    let stats = sim.stats().await;
    assert_eq!(stats["sends"], 1, "{stats}");
    assert_eq!(stats["sends_by_session"], json!({ id.as_str(): 1 }));
}

#[tokio::test]
async fn a_send_is_queued_by_default_and_delivers_sent_then_ack_and_a_second_send_is_counted() {
    let sim = TestSim::start().await;
    let mut receiver = Receiver::start(vec![]).await;
    let (id, _) = sim.ready_session(Some(&receiver.url)).await;
    let (other, _) = sim.ready_session(None).await;
    receiver.next().await;

    let answer = sim.command("send", with_session(&id, text_to("79990001122", "queued"))).await;
    assert_eq!((answer.status, answer.text.as_str()), (200, r#"{"result":{}}"#));
    let sent = receiver.next().await;
    let ack = receiver.next().await;
    assert_eq!((&sent["event_action"], &ack["event_action"]), (&json!("sent"), &json!("ack")));
    assert_eq!(sent["event_data"]["body"], "queued");
    assert_eq!(sent["event_data"]["id"], ack["event_data"]["id"], "both name the same message");
    assert!(ack["id"].as_u64() > sent["id"].as_u64());

    let mut explicit = with_session(&id, text_to("79990001122", "again"));
    explicit["async"] = json!(true);
    assert_eq!(sim.command("send", explicit).await.text, r#"{"result":{}}"#);
    sim.command("send", with_session(&other, text_to("79990001122", "elsewhere"))).await;
    let stats = sim.stats().await;
    assert_eq!(stats["sends"], 3, "{stats}");
    assert_eq!(stats["sends_by_session"], json!({ id.as_str(): 2, other.as_str(): 1 }));

    sim.post("/sim/reset", json!({})).await;
    let stats = sim.stats().await;
    assert_eq!((&stats["sends"], &stats["sends_by_session"]), (&json!(0), &json!({})), "{stats}");
}

#[tokio::test]
async fn a_media_send_answers_a_message_with_a_media_key() {
    let sim = TestSim::start().await;
    let (id, _) = sim.ready_session(None).await;
    let data = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG fake image");
    let answer = sim
        .command(
            "send",
            json!({
                "WhatsappID": id, "async": false,
                "recipient": { "id": "79990001122@c.us" },
                "message": { "type": "image", "body": "caption",
                             "media": { "mimetype": "image/png", "data": data, "filename": "a.png" } },
            }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let message = &answer.json["result"];
    assert_eq!(
        (&message["type"], &message["has_media"], &message["body"]),
        (&json!("image"), &json!(true), &json!("caption"))
    );
    assert!(message["media_key"].as_str().is_some_and(|k| k.len() == 44), "{message}");
}

#[tokio::test]
async fn the_sdk_base_path_and_its_header_spelling_reach_the_same_commands() {
    let sim = TestSim::start().await;
    let (id, _) = sim.ready_session(None).await;
    for (base, header) in [("/v1", "X-API-Key"), ("/api/v1", "x-api-key"), ("/v1", "X-Api-Key")] {
        let check = sim.command_at(base, "check", header, json!({ "WhatsappID": id, "number": "79990001122" })).await;
        assert_eq!(check.text, r#"{"result":"OK","data":true}"#, "{base} with {header}");
    }
    let mut body = with_session(&id, text_to("79990001122", "via the SDK base"));
    body["async"] = json!(false);
    let sent = sim.command_at("/v1", "send", "X-API-Key", body).await;
    assert_eq!(sent.json["result"]["body"], "via the SDK base", "{}", sent.text);
    let listed = sim.command_at("/v1", "sessions-get", "X-API-Key", json!({ "WhatsappID": id })).await;
    assert_eq!(listed.json["elements"], 1, "{}", listed.text);
    let unauthorized = sim.command_at("/v1", "send", "X-API-Key-Typo", json!({ "WhatsappID": id })).await;
    unauthorized.assert_error("Unauthorized");
}

#[tokio::test]
async fn check_says_whether_a_number_is_on_whatsapp() {
    let sim = TestSim::start().await;
    let (id, _) = sim.ready_session(None).await;
    let check = |number: Value| sim.command("check", json!({ "WhatsappID": id, "number": number }));
    assert_eq!(check(json!("79990001122")).await.json["data"], true);
    assert_eq!(check(json!(79990001122u64)).await.json["data"], true, "a number written as one");
    assert_eq!(check(json!("79990000404")).await.json["data"], false, "numbers ending in 404 are not on WhatsApp");
    for bad in [json!("+7999"), json!("abc"), json!(null), json!([1])] {
        check(bad).await.assert_error("ValidationError");
    }
}

#[tokio::test]
async fn messaging_commands_need_a_ready_session() {
    let sim = TestSim::start().await;
    let pending = sim.create(json!({ "name": "n" })).await.unique_id();
    let (ready, _) = sim.ready_session(None).await;
    let bodies = [
        ("send", text_to("79990001122", "x")),
        ("check", json!({ "number": "79990001122" })),
        ("get-chats", json!({})),
        ("seen", json!({ "recipient": { "number": "79990001122" } })),
        ("typing", json!({ "recipient": { "number": "79990001122" } })),
        ("get-media", json!({ "media_key": "k" })),
    ];
    for (command, body) in &bodies {
        let answer = sim.command(command, with_session(&pending, body.clone())).await;
        answer.assert_error("ValidationError");
        assert!(answer.json["message"].as_str().is_some_and(|m| m.contains("READY")), "{command}: {}", answer.text);
        sim.command(command, with_session("1234567890123", body.clone())).await.assert_error("NotFound");
        sim.command(command, body.clone()).await.assert_error("ValidationError");
    }
    sim.command("session-delete", json!({ "WhatsappID": ready })).await;
    sim.command("send", with_session(&ready, text_to("79990001122", "x"))).await.assert_error("NotFound");
    assert_eq!(sim.stats().await["sends"], 0, "refused sends are not counted");
}

#[tokio::test]
async fn a_send_with_a_bad_body_is_a_validation_error_and_sends_nothing() {
    let sim = TestSim::start().await;
    let mut receiver = Receiver::start(vec![]).await;
    let (id, _) = sim.ready_session(Some(&receiver.url)).await;
    receiver.next().await;
    let media = |data: &str| json!({ "mimetype": "image/png", "data": data, "filename": "a.png" });
    for body in [
        json!({ "message": { "body": "no recipient" } }),
        json!({ "recipient": { "number": "+7 999" }, "message": { "body": "x" } }),
        json!({ "recipient": { "id": "79990001122" }, "message": { "body": "x" } }),
        json!({ "recipient": { "number": "7999", "type": "channel" }, "message": { "body": "x" } }),
        json!({ "recipient": { "number": "79990001122" } }),
        json!({ "recipient": { "number": "79990001122" }, "message": { "type": "text", "body": "" } }),
        json!({ "recipient": { "number": "79990001122" }, "message": { "type": "image" } }),
        json!({ "recipient": { "number": "79990001122" }, "message": { "type": "image", "media": media("%%%") } }),
        json!({ "recipient": { "number": "79990001122" }, "message": { "type": "gif", "media": media("aGk=") } }),
        json!({ "recipient": { "number": "79990001122" }, "message": { "body": "x" }, "async": "yes" }),
    ] {
        let answer = sim.command("send", with_session(&id, body.clone())).await;
        answer.assert_error("ValidationError");
        assert!(answer.json["message"].as_str().is_some_and(|m| m.len() > 10), "{body}: {}", answer.text);
    }
    sim.command_raw("send", Some(crate::helpers::KEY), "not json")
        .await
        .expect("an answer")
        .assert_error("ValidationError");
    assert_eq!(sim.stats().await["sends"], 0);
    assert!(receiver.events.try_recv().is_err(), "no event for a refused send");
}

#[tokio::test]
async fn get_chats_lists_contacts_and_groups_and_seen_reads_a_chat() {
    let sim = TestSim::start().await;
    let (id, wid) = sim.ready_session(None).await;
    sim.command("send", with_session(&id, text_to("79990001122", "to a contact"))).await;
    let group = json!({ "recipient": { "number": "120363025", "type": "group" }, "message": { "body": "to a group" } });
    assert_eq!(sim.command("send", with_session(&id, group)).await.status, 200);
    let incoming = sim.incoming(&id, json!({ "from": "79993334455", "body": "hi" })).await;
    assert_eq!(incoming.status, 200, "{}", incoming.text);

    let chats = sim.command("get-chats", json!({ "WhatsappID": id })).await;
    let data = chats.data().as_array().expect("a list of chats").clone();
    let ids: Vec<&str> = data.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids.len(), 3, "{}", chats.text);
    for expected in ["79990001122@c.us", "120363025@g.us", "79993334455@c.us"] {
        assert!(ids.contains(&expected), "{expected} in {}", chats.text);
    }
    let chat = |chat_id: &str| data.iter().find(|c| c["id"] == chat_id).cloned().expect("the chat");
    let group = chat("120363025@g.us");
    assert_eq!(group["is_group"], true);
    assert_eq!(group["group_metadata"]["owner"], wid.as_str());
    assert_eq!(
        group["group_metadata"]["participants"][0],
        json!({ "id": wid, "is_admin": true, "is_super_admin": true })
    );
    let contact = chat("79993334455@c.us");
    assert_eq!((&contact["is_group"], &contact["unread_count"]), (&json!(false), &json!(1)));
    assert!(contact.get("group_metadata").is_none());

    let seen = sim.command("seen", json!({ "WhatsappID": id, "recipient": { "id": "79993334455@c.us" } })).await;
    assert_eq!(seen.text, r#"{"result":"OK"}"#);
    let typing = sim.command("typing", json!({ "WhatsappID": id, "recipient": { "number": "79993334455" } })).await;
    assert_eq!(typing.text, r#"{"result":"OK"}"#);
    let chats = sim.command("get-chats", json!({ "WhatsappID": id })).await;
    let contact = chats.data().as_array().and_then(|d| d.iter().find(|c| c["id"] == "79993334455@c.us").cloned());
    assert_eq!(contact.expect("the chat")["unread_count"], 0, "{}", chats.text);
    sim.command("seen", json!({ "WhatsappID": id, "recipient": "79993334455" })).await.assert_error("ValidationError");
}

#[tokio::test]
async fn an_incoming_file_is_served_by_get_media_streamed_at_the_size_the_test_chose() {
    let sim = TestSim::start().await;
    let mut receiver = Receiver::start(vec![]).await;
    let (id, wid) = sim.ready_session(Some(&receiver.url)).await;
    receiver.next().await;
    let size = 200_001;
    let incoming = sim
        .incoming(&id, json!({ "from": "79993334455", "body": "a scan", "media": { "size": size, "mimetype": "application/pdf", "filename": "scan.pdf" } }))
        .await;
    assert_eq!(incoming.status, 200, "{}", incoming.text);
    let event = receiver.next().await;
    assert_eq!(event["event_action"], "message");
    let message = &event["event_data"];
    assert_eq!(
        (&message["type"], &message["has_media"], &message["body"]),
        (&json!("document"), &json!(true), &json!("a scan"))
    );
    assert_eq!((&message["from"], &message["to"]), (&json!("79993334455@c.us"), &json!(wid)));
    assert!(message["id"].as_str().is_some_and(|m| m.starts_with("false_79993334455@c.us_")), "{message}");
    let key = message["media_key"].as_str().expect("a media key").to_owned();
    assert_eq!(incoming.json["media_key"], key.as_str());
    assert_eq!(incoming.json["event_id"], event["id"]);

    let fetch = || async {
        let response = sim
            .client
            .post(sim.url("/v1/get-media"))
            .header("X-API-Key", crate::helpers::KEY)
            .timeout(std::time::Duration::from_secs(10))
            .json(&json!({ "WhatsappID": id, "media_key": key }))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("content-length").is_none(), "streamed, not sized up front");
        let body: Value = serde_json::from_slice(&response.bytes().await.expect("the body")).expect("JSON");
        body
    };
    let first = fetch().await;
    assert_eq!(first["result"], "OK");
    assert_eq!(
        (&first["media"]["mimetype"], &first["media"]["filename"]),
        (&json!("application/pdf"), &json!("scan.pdf"))
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(first["media"]["data"].as_str().expect("base64 data"))
        .expect("valid base64");
    assert_eq!(bytes.len(), size);
    assert!(bytes.iter().any(|b| *b != 0), "not a run of zeros");
    assert_eq!(fetch().await, first, "the same bytes every time");

    let other = sim.incoming(&id, json!({ "from": "79993334455", "media": { "size": 16 } })).await;
    let other_key = other.json["media_key"].as_str().expect("a key").to_owned();
    let small = sim.command("get-media", json!({ "WhatsappID": id, "media_key": other_key })).await;
    assert_eq!(
        (&small.json["media"]["mimetype"], &small.json["media"]["filename"]),
        (&json!("image/jpeg"), &json!("file.jpg"))
    );
    assert_ne!(small.json["media"]["data"], first["media"]["data"]);
    assert_eq!(small.json["media"]["data"].as_str().map(str::len), Some(24), "16 bytes in base64");
    // The swagger SDKs name the key `mediaKey`.
    let sdk = sim.command("get-media", json!({ "WhatsappID": id, "mediaKey": other_key })).await;
    assert_eq!(sdk.json, small.json, "the same file by the SDKs' field name");

    sim.command("get-media", json!({ "WhatsappID": id, "media_key": "nope" })).await.assert_error("NotFound");
    sim.command("get-media", json!({ "WhatsappID": id })).await.assert_error("ValidationError");
}

#[tokio::test]
async fn an_incoming_message_needs_a_sender_and_a_body_or_a_file_of_bounded_size() {
    let sim = TestSim::start().await;
    let (id, _) = sim.ready_session(None).await;
    for bad in [
        json!({ "body": "no sender" }),
        json!({ "from": "79993334455" }),
        json!({ "from": "someone", "body": "x" }),
        json!({ "from": "79993334455", "media": { "size": 64 * 1024 * 1024 + 1 } }),
        json!({ "from": "79993334455", "body": "x", "extra": 1 }),
    ] {
        assert_eq!(sim.incoming(&id, bad.clone()).await.status, 400, "{bad}");
    }
    assert_eq!(sim.incoming("1234567890123", json!({ "from": "79993334455", "body": "x" })).await.status, 404);
    let legacy = sim.post(&format!("/sim/sessions/{id}/message"), json!({ "from": "79993334455", "body": "x" })).await;
    assert_eq!(legacy.status, 200, "the older route stays: {}", legacy.text);
}

#[tokio::test]
async fn a_disconnect_sends_an_event_and_the_session_must_be_authorized_again() {
    let sim = TestSim::start().await;
    let mut receiver = Receiver::start(vec![]).await;
    let (id, _) = sim.ready_session(Some(&receiver.url)).await;
    receiver.next().await;

    let answer = sim.post(&format!("/sim/sessions/{id}/disconnect"), json!({ "reason": "NAVIGATION" })).await;
    assert_eq!(answer.data()["status"], "PENDING");
    assert!(answer.data()["wid"].is_null());
    let event = receiver.next().await;
    assert_eq!(event["event_action"], "disconnect");
    assert_eq!(event["event_data"]["reason"], "NAVIGATION");
    sim.command("send", with_session(&id, text_to("79990001122", "x"))).await.assert_error("ValidationError");
    assert_eq!(sim.disconnect(&id).await.status, 409, "only a READY session can be disconnected");
    sim.wait_for_session(&id, "AUTH with a new QR", |s| s["status"] == "AUTH").await;
    assert_eq!(sim.scan(&id).await.data()["status"], "READY");
    assert_eq!(receiver.next().await["event_action"], "ready");
    let stats = eventually("the three deliveries", || async {
        let stats = sim.stats().await;
        (stats["webhooks_delivered"] == 3).then_some(stats)
    })
    .await;
    assert_eq!(stats["webhooks_failed"], 0);
}
