//! The OpenAPI document: served, complete, and true to what the handlers answer.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::{deploy, Cp};
use novacula_client::Method;
use novacula_control_plane::api::{openapi, OPENAPI_PATH};
use novacula_control_plane::Config;
use novacula_core::ObservedNodeStatus;
use serde_json::{json, Value};
use std::time::Duration;

/// Check `value` against `schema` (resolving `$ref`s in `doc`): required
/// properties present, no undocumented property, types as documented.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return conforms(doc, &doc["components"]["schemas"][name], value, at);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema[key].as_array() {
            let errs: Vec<String> = alts.iter().filter_map(|s| conforms(doc, s, value, at).err()).collect();
            return if errs.len() < alts.len() { Ok(()) } else { Err(errs.join(" | ")) };
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        // flattened structs: the value must have every part's required properties
        let mut merged = json!({"type": "object", "properties": {}, "required": []});
        for part in all {
            let part = match part["$ref"].as_str() {
                Some(r) => doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")].clone(),
                None => part.clone(),
            };
            merged["properties"].as_object_mut().unwrap().extend(part["properties"].as_object().cloned().unwrap_or_default());
            merged["required"].as_array_mut().unwrap().extend(part["required"].as_array().cloned().unwrap_or_default());
        }
        return conforms(doc, &merged, value, at);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(|t| t.as_str()).collect(),
        _ => vec![],
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !(types.is_empty() || types.contains(&actual) || actual == "integer" && types.contains(&"number")) {
        return Err(format!("{at}: documented as {types:?}, answered {actual}"));
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            return Err(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
            }
        }
        Value::Object(map) if schema.get("properties").is_some() => {
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap();
                if !map.contains_key(r) {
                    return Err(format!("{at}: documented property {r} missing"));
                }
            }
            for (k, v) in map {
                let Some(s) = schema["properties"].get(k) else { return Err(format!("{at}: undocumented property {k}")) };
                conforms(doc, s, v, &format!("{at}.{k}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn response_schema<'a>(doc: &'a Value, path: &str, method: &str, status: &str) -> &'a Value {
    let s = &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    assert!(!s.is_null(), "{method} {path} documents no {status} JSON body");
    s
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let cp = Cp::with_orgs(Config::default()).await;
    let served: Value = cp.anon().get(OPENAPI_PATH).await.unwrap();
    assert_eq!(served, serde_json::to_value(openapi()).unwrap());
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
    for scheme in ["session", "apiKey"] {
        assert_eq!(served["components"]["securitySchemes"][scheme]["scheme"], "bearer");
    }
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let cp = Cp::with_orgs(Config::default()).await;
    let doc = serde_json::to_value(openapi()).unwrap();
    let anon = cp.anon();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let concrete = path.replace("{name}", "some-name").replace("{id}", "some-id");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(method.as_str(), "post" | "put").then(|| b"{}".to_vec());
            let (status, bytes) = anon.raw(m, &concrete, body, Duration::from_secs(5)).await.unwrap();
            let answer = String::from_utf8_lossy(&bytes);
            assert!(status.as_u16() != 405 && !answer.contains("no such endpoint"), "{method} {path} is documented but not routed: {status} {answer}");
            // unauthenticated: refused as documented (login: bad input)
            let documented = item[method]["responses"].as_object().unwrap();
            assert!(documented.contains_key(status.as_str()), "{method} {path} answered {status}, documented {:?}", documented.keys());
        }
    }
    assert_eq!(operations, 79, "the API has 79 operations; update this count with the README's API table");
}

/// The answers that follow from an operation's shape are stated for every one of them.
#[test]
fn every_operation_documents_the_answers_of_its_shape() {
    let doc = serde_json::to_value(openapi()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let documented = op["responses"].as_object().unwrap();
            let has = |code: &str| documented.contains_key(code);
            assert!(has("500"), "{method} {path}: no 500");
            if op.get("security").is_some_and(|s| !s.as_array().unwrap().is_empty()) {
                assert!(has("401") && has("403"), "{method} {path} is authenticated but documents {:?}", documented.keys());
            }
            if op.get("requestBody").is_some() {
                assert!(has("400") && has("413") && has("415"), "{method} {path} takes a body but documents {:?}", documented.keys());
            }
        }
    }
}

#[tokio::test]
async fn real_answers_match_their_documented_schemas() {
    let cp = Cp::with_orgs(Config::default()).await;
    let doc = serde_json::to_value(openapi()).unwrap();
    let (alice, edge) = cp.alice_and_edge().await;
    let created = deploy(&alice, "edge-1", "n1").await.unwrap();
    let report = json!({"nodes": [{"node": "n1", "revision": 1, "processes": [
        {"name": "execution", "status": ObservedNodeStatus::Running, "sync": {"currentBlock": 5, "highestBlock": 9, "peers": 3}},
        {"name": "consensus", "status": "starting", "message": "waiting for peers"}
    ]}]});
    let reported: Value = edge.call(Method::POST, "/api/v1/executor/report?executor=edge-1", Some(&report)).await.unwrap();
    let key: Value = alice.call(Method::POST, "/api/v1/keys", Some(&json!({"label": "x"}))).await.unwrap();
    let answers = [
        ("/api/v1/nodes", "post", "201", created),
        ("/api/v1/executor/report", "post", "200", reported),
        ("/api/v1/keys", "post", "201", key),
        ("/api/v1/nodes/{name}", "get", "200", alice.get("/api/v1/nodes/n1").await.unwrap()),
        ("/api/v1/nodes", "get", "200", alice.get("/api/v1/nodes").await.unwrap()),
        ("/api/v1/executors/{name}", "get", "200", alice.get("/api/v1/executors/edge-1").await.unwrap()),
        ("/api/v1/executors", "get", "200", alice.get("/api/v1/executors").await.unwrap()),
        ("/api/v1/events", "get", "200", alice.get("/api/v1/events").await.unwrap()),
        ("/api/v1/me", "get", "200", alice.get("/api/v1/me").await.unwrap()),
        ("/api/v1/keys", "get", "200", alice.get("/api/v1/keys").await.unwrap()),
        ("/api/v1/executor/specs", "get", "200", edge.get("/api/v1/executor/specs?executor=edge-1").await.unwrap()),
    ];
    for (path, method, status, value) in &answers {
        if let Err(e) = conforms(&doc, response_schema(&doc, path, method, status), value, &format!("{method} {path}")) {
            panic!("{e}\nanswer: {value}");
        }
    }
    // the checker itself catches drift
    let mut bad = answers[3].3.clone();
    bad["surprise"] = json!(1);
    assert!(conforms(&doc, response_schema(&doc, "/api/v1/nodes/{name}", "get", "200"), &bad, "x").unwrap_err().contains("undocumented property surprise"));
    bad.as_object_mut().unwrap().remove("surprise");
    bad.as_object_mut().unwrap().remove("phase");
    assert!(conforms(&doc, response_schema(&doc, "/api/v1/nodes/{name}", "get", "200"), &bad, "x").unwrap_err().contains("phase"));
}

#[test]
fn the_document_states_the_patterns_core_enforces() {
    // The schema attributes are literals; this keeps them equal to the rules' own.
    use novacula_core::wire::patterns;
    let doc = serde_json::to_string(&openapi()).unwrap();
    for (what, pattern) in [
        ("name", patterns::NAME),
        ("version", patterns::VERSION),
        ("sha256", patterns::SHA256),
        ("artifact", patterns::ARTIFACT),
        ("image digest", patterns::IMAGE_DIGEST),
    ] {
        let quoted = serde_json::to_string(pattern).unwrap();
        assert!(doc.contains(&format!("\"pattern\":{quoted}")), "the document does not state the {what} pattern {pattern}");
    }
}
