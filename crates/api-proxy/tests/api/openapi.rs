//! The API document as served, and its operations against the routes.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn the_api_document_is_served_without_a_token_and_is_the_committed_one() {
    let app = TestApp::spawn().await;
    let r = app.client.get(format!("{}/openapi.json", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "content-type"), Some("application/json"));
    let served = r.text().await.unwrap();
    assert_eq!(served, wgate_api_proxy::openapi::document_json());
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/api/v1/session-create", "/api/v1/jobs/{id}", "/api/v1/sessions-get", "/qr/{token}", "/hooks/{token}"]
    {
        assert!(doc["paths"].get(path).is_some(), "{path} is described");
    }
}

#[tokio::test]
async fn every_operation_of_the_api_document_is_routed_to_a_handler() {
    let app = TestApp::spawn().await;
    let doc: Value = serde_json::from_str(&wgate_api_proxy::openapi::document_json()).unwrap();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let url = format!("{}{}", app.base, path.replace("{id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV").replace("{token}", "x"));
        for method in item.as_object().unwrap().keys() {
            let r = app
                .client
                .request(method.to_uppercase().parse().unwrap(), &url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path} is documented but answers 405: {body}");
            assert!(!body.contains("No such resource"), "{method} {path} is documented but not routed: {body}");
            operations += 1;
        }
    }
    assert!(operations >= 11, "{operations} operations");
}
