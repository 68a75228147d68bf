//! `POST /graphql`: the operations of Novacula's documentation, each in
//! core's operation table (with its REST twin's permission), answering what
//! REST answers for the same scenario; limits, introspection, no probing.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests and benchmarks fail loudly")]

mod common;

use common::*;
use novacula_client::{HttpApi, Method};
use novacula_control_plane::api::graphql;
use novacula_control_plane::Config;
use novacula_core::authz::{self, Access, OperationAuth};
use novacula_core::{ExecutorKind, ObservedNodeState, ObservedNodeStatus, ObservedProcess, Revision};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// The answer to a GraphQL document: `data` and `errors` as sent.
async fn gql(api: &HttpApi, query: &str, variables: Value) -> Value {
    api.call(Method::POST, "/graphql", Some(&json!({"query": query, "variables": variables}))).await.unwrap()
}

/// `data` of an answer that must have no error.
async fn data(api: &HttpApi, query: &str, variables: Value) -> Value {
    let r = gql(api, query, variables).await;
    assert!(r.get("errors").is_none(), "{query}: {r}");
    r["data"].clone()
}

/// The code of the first error (`FORBIDDEN`, `NOT_FOUND`, ...) and its message.
fn error(r: &Value) -> (String, String) {
    let e = &r["errors"][0];
    (e["extensions"]["code"].as_str().unwrap_or_default().to_string(), e["message"].as_str().unwrap_or_default().to_string())
}

/// The fields of `type <name> {` in the schema's SDL.
fn fields(sdl: &str, name: &str) -> BTreeSet<String> {
    let start = sdl.find(&format!("type {name} {{")).unwrap_or_else(|| panic!("no type {name} in\n{sdl}"));
    let body = &sdl[start..][..sdl[start..].find('}').unwrap()];
    // Descriptions are """ blocks of their own lines.
    let mut in_description = false;
    body.lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| {
            if l.starts_with("\"\"\"") {
                // A one-line description opens and closes on the same line.
                let one_line = l.len() > 3 && l.ends_with("\"\"\"");
                in_description = !(in_description || one_line);
                return false;
            }
            !in_description && !l.is_empty() && !l.starts_with('"') && !l.starts_with('#')
        })
        .filter_map(|l| l.split(['(', ':']).next().map(|f| f.trim().to_string()))
        .filter(|f| !f.is_empty() && f.chars().next().unwrap().is_ascii_lowercase())
        .collect()
}

#[test]
fn the_operation_table_lists_exactly_the_schema_operations() {
    let sdl = graphql::schema(true).sdl();
    let mut ops = fields(&sdl, "Query");
    ops.extend(fields(&sdl, "Mutation"));
    let table: BTreeSet<String> = authz::OPERATIONS.iter().map(|o| o.name.to_string()).collect();
    assert_eq!(ops, table, "schema operations vs core's table");
    for name in ["syncExecutor", "reportRuntimeEvents", "createNode", "updateNode", "deleteNode", "requestNodeLifecycleAction"] {
        assert!(table.contains(name), "Novacula's documented operation {name}");
    }
}

const NODE_FIELDS: &str = "name executor revision phase desiredState restartGeneration revisionsBehind nodeDown executorOnline deleted removed spec observed observedAt createdAt updatedAt";

fn observed(name: &str, rev: u64) -> ObservedNodeState {
    let processes =
        ["execution", "consensus"].iter().map(|p| ObservedProcess { name: p.to_string(), status: ObservedNodeStatus::Running, sync: None, message: None });
    ObservedNodeState { node: name.into(), revision: Revision(rev), processes: processes.collect(), removed: false, disk: None }
}

/// A REST node read as GraphQL names it (`desiredState`, `revisionsBehind`
/// and `restartGeneration` lifted out of the spec and drift).
fn as_graphql(n: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for f in NODE_FIELDS.split(' ') {
        let v = match f {
            "desiredState" => n["spec"]["desiredState"].clone(),
            "restartGeneration" => n["spec"]["restartGeneration"].clone(),
            "revisionsBehind" => n["drift"]["revisionsBehind"].clone(),
            other => n.get(other).cloned().unwrap_or(Value::Null),
        };
        out.insert(f.to_string(), v);
    }
    Value::Object(out)
}

#[tokio::test]
async fn the_same_scenario_through_rest_and_graphql_gives_the_same_results() {
    let cp = Cp::with_orgs(Config::default()).await;
    // acme works through REST, globex through GraphQL, at the same instants.
    let (alice, bob) = (cp.login("alice").await, cp.login("bob").await);
    let (rest_exec, _) = cp.executor_client(&alice, None).await;
    let (gql_exec, _) = cp.executor_client(&bob, None).await;
    let node_q = format!("query($n: String!) {{ node(name: $n) {{ {NODE_FIELDS} }} }}");

    let synced_rest = rest_exec.sync_executor(&sync_req("edge", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    let sync_input = serde_json::to_value(sync_req("edge", ExecutorKind::Agent, "1.0.0")).unwrap();
    let synced_gql = data(&gql_exec, "mutation($i: JSON!) { syncExecutor(input: $i) { compat serverVersion upgrade } }", json!({"i": sync_input})).await;
    assert_eq!(synced_gql["syncExecutor"]["compat"], serde_json::to_value(synced_rest.compat).unwrap());
    assert_eq!(synced_gql["syncExecutor"]["serverVersion"], synced_rest.server_version);

    // Deploy.
    let spec = serde_json::to_value(spec("n1")).unwrap();
    let created_rest = deploy(&alice, "edge", "n1").await.unwrap();
    let created_gql = data(&bob, &format!("mutation($s: JSON!) {{ createNode(executor: \"edge\", spec: $s) {{ {NODE_FIELDS} }} }}"), json!({"s": spec})).await;
    assert_eq!(created_gql["createNode"], as_graphql(&created_rest));

    // The executor reports revision 1 running.
    rest_exec.report("edge", vec![observed("n1", 1)]).await.unwrap();
    let reported = data(
        &gql_exec,
        "mutation($n: JSON!) { reportRuntimeEvents(executorName: \"edge\", nodes: $n) { accepted rejected } }",
        json!({"n": [observed("n1", 1)]}),
    )
    .await;
    assert_eq!(reported["reportRuntimeEvents"], json!({"accepted": 1, "rejected": []}));
    let rest_node = node(&alice, "n1").await;
    assert_eq!(rest_node["phase"], "running");
    assert_eq!(data(&bob, &node_q, json!({"n": "n1"})).await["node"], as_graphql(&rest_node));

    // Stop, then edit the spec.
    cp.advance(Duration::from_secs(1));
    lifecycle(&alice, "n1", "stop").await.unwrap();
    let stopped = data(&bob, &format!("mutation {{ requestNodeLifecycleAction(name: \"n1\", action: \"stop\") {{ {NODE_FIELDS} }} }}"), json!({})).await;
    assert_eq!(stopped["requestNodeLifecycleAction"], as_graphql(&node(&alice, "n1").await));
    let mut edited = rest_node["spec"].clone();
    edited["clients"][0]["resources"]["cpuMillis"] = json!(2000);
    let _: Value = alice.call(Method::PUT, "/api/v1/nodes/n1/spec", Some(&json!({"spec": edited}))).await.unwrap();
    let updated = data(&bob, &format!("mutation($s: JSON!) {{ updateNode(name: \"n1\", spec: $s) {{ {NODE_FIELDS} }} }}"), json!({"s": edited})).await;
    assert_eq!(updated["updateNode"], as_graphql(&node(&alice, "n1").await));
    assert_eq!(updated["updateNode"]["revision"], 3);

    // Lists: executors, nodes, members, keys, events.
    let execs: Vec<Value> = alice.get("/api/v1/executors").await.unwrap();
    let e = data(&bob, "{ executors { name kind version channel online compat deactivated nodeCount updatedAt createdAt capabilities } }", json!({})).await;
    let pick = |v: &Value| {
        json!([
            v["name"],
            v["kind"],
            v["version"],
            v["channel"],
            v["online"],
            v["compat"],
            v["deactivated"],
            v["nodeCount"],
            v["updatedAt"],
            v["createdAt"],
            v["capabilities"]
        ])
    };
    assert_eq!(pick(&e["executors"][0]), pick(&execs[0]));
    let nodes: Vec<Value> = alice.get("/api/v1/nodes").await.unwrap();
    let g = data(&bob, &format!("{{ nodes {{ {NODE_FIELDS} }} }}"), json!({})).await;
    assert_eq!(g["nodes"], Value::Array(nodes.iter().map(as_graphql).collect()));
    let members: Vec<Value> = alice.get("/api/v1/users").await.unwrap();
    let m = data(&bob, "{ members { username role disabled manageable } }", json!({})).await;
    assert_eq!(m["members"].as_array().unwrap().len(), members.len());
    assert_eq!((m["members"][0]["role"].clone(), members[0]["role"].clone()), (json!("owner"), json!("owner")));
    let keys: Vec<Value> = alice.get("/api/v1/keys").await.unwrap();
    let k = data(&bob, "{ apiKeys { label executor expired revokedAt createdAt expiresAt } }", json!({})).await;
    let pick = |v: &Value| json!([v["label"], v["executor"], v["expired"], v["revokedAt"], v["createdAt"], v["expiresAt"]]);
    assert_eq!(pick(&k["apiKeys"][0]), pick(&keys[0]));
    // The same events in the same order, each with the same level and
    // sentence (but the keys' ids, which differ between the organizations).
    let said = |e: &Value| {
        let key_event = e["kind"].as_str().unwrap().starts_with("apikey.");
        json!([e["kind"], e["node"], e["level"], if key_event { Value::Null } else { e["message"].clone() }])
    };
    let rest_events: Vec<Value> = events(&alice, 0).await.iter().map(said).collect();
    let g = data(&bob, "{ events(limit: 1000) { next events { seq kind node actor data level message } } }", json!({})).await;
    let gql_events: Vec<Value> = g["events"]["events"].as_array().unwrap().iter().map(said).collect();
    assert_eq!(gql_events, rest_events);
    assert!(rest_events.contains(&json!(["node.lifecycle.requested", "n1", "info", "node n1: stop requested"])), "{rest_events:#?}");
    assert!(g["events"]["events"].as_array().unwrap().iter().any(|e| e["actor"] == "user:bob"));

    // Delete: irreversible, the same answer.
    let deleted_rest: Value = alice.call(Method::DELETE, "/api/v1/nodes/n1", None::<&()>).await.unwrap();
    let deleted = data(&bob, &format!("mutation {{ deleteNode(name: \"n1\") {{ {NODE_FIELDS} }} }}"), json!({})).await;
    assert_eq!(deleted["deleteNode"], as_graphql(&deleted_rest));
    assert_eq!(deleted["deleteNode"]["phase"], "deleting");

    // Decoded as REST decodes: `5.0` is an integer there and here.
    let r = data(
        &gql_exec,
        "mutation($n: JSON!) { reportRuntimeEvents(executorName: \"edge\", nodes: $n) { accepted } }",
        json!({"n": [{"node": "n1", "revision": 1.0, "processes": []}]}),
    )
    .await;
    assert_eq!(r["reportRuntimeEvents"]["accepted"], 1);
    // The same refusals: an unknown node, a bad action, an invalid spec.
    let r = gql(&bob, "mutation { requestNodeLifecycleAction(name: \"nope\", action: \"stop\") { name } }", json!({})).await;
    assert_eq!(error(&r).0, "NOT_FOUND");
    let r = gql(&bob, "mutation { requestNodeLifecycleAction(name: \"n1\", action: \"explode\") { name } }", json!({})).await;
    assert_eq!(error(&r).0, "BAD_REQUEST");
    let mut bad = spec.clone();
    bad["name"] = json!("n2");
    bad["chain"] = json!("dogecoin");
    let rest_bad = alice.call::<_, Value>(Method::POST, "/api/v1/nodes", Some(&json!({"executor": "edge", "spec": bad}))).await.unwrap_err();
    let r = gql(&bob, "mutation($s: JSON!) { createNode(executor: \"edge\", spec: $s) { name } }", json!({"s": bad})).await;
    assert_eq!(r["errors"][0]["extensions"]["status"], json!(rest_bad.status().unwrap()));
    assert_eq!(error(&r).0, "INVALID");
    cp.stop().await;
}

/// A document calling `op` with arguments that name nothing (so an allowed
/// call changes nothing, like the REST permission test).
fn document(op: &str) -> String {
    match op {
        "me" => "{ me { username } }".into(),
        "executors" => "{ executors { name } }".into(),
        "executor" => "{ executor(name: \"no-such-thing\") { name } }".into(),
        "nodes" => "{ nodes { name } }".into(),
        "node" => "{ node(name: \"no-such-thing\") { name } }".into(),
        "events" => "{ events { next } }".into(),
        "apiKeys" => "{ apiKeys { id } }".into(),
        "members" => "{ members { username } }".into(),
        "createNode" => "mutation { createNode(executor: \"no-such-thing\", spec: {}) { name } }".into(),
        "updateNode" => "mutation { updateNode(name: \"no-such-thing\", spec: {}) { name } }".into(),
        "deleteNode" => "mutation { deleteNode(name: \"no-such-thing\") { name } }".into(),
        "requestNodeLifecycleAction" => "mutation { requestNodeLifecycleAction(name: \"no-such-thing\", action: \"stop\") { name } }".into(),
        "syncExecutor" => "mutation { syncExecutor(input: {}) { compat } }".into(),
        "reportRuntimeEvents" => "mutation { reportRuntimeEvents(executorName: \"edge\", nodes: []) { accepted } }".into(),
        other => panic!("no document for {other}: add one"),
    }
}

#[tokio::test]
async fn every_role_and_key_gets_what_the_operation_table_gives_it() {
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    let sessions = cp.sessions_of_every_role(&alice).await;
    let (key, _) = cp.executor_client(&alice, None).await;
    key.sync_executor(&sync_req("edge", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    for op in authz::OPERATIONS {
        let doc = document(op.name);
        for (role, session) in &sessions {
            let r = gql(session, &doc, json!({})).await;
            let (code, message) = error(&r);
            match op.auth {
                OperationAuth::Session { method, path } => {
                    let Some(Access::Org(p)) = authz::route_needs(method, path) else { unreachable!() };
                    if role.can(p) {
                        assert!(code != "FORBIDDEN" && code != "INTERNAL", "{} refused to {role:?}: {r}", op.name);
                    } else {
                        assert_eq!(code, "FORBIDDEN", "{} let {role:?} through: {r}", op.name);
                        assert!(message.contains(&format!("needs {}", p.as_str())), "{message}");
                    }
                }
                OperationAuth::ApiKey => assert_eq!(code, "FORBIDDEN", "{} takes a key, not {role:?}'s session: {r}", op.name),
            }
        }
        let r = gql(&key, &doc, json!({})).await;
        let code = error(&r).0;
        match op.auth {
            OperationAuth::Session { .. } => assert_eq!(code, "FORBIDDEN", "{} let an API key through: {r}", op.name),
            OperationAuth::ApiKey => assert!(code != "FORBIDDEN" && code != "INTERNAL", "{} refused its key: {r}", op.name),
        }
    }
    // No credentials, or wrong ones: 401 before anything runs.
    let (status, _) = cp.anon().raw(Method::POST, "/graphql", Some(br#"{"query":"{ me { username } }"}"#.to_vec()), Duration::from_secs(5)).await.unwrap();
    assert_eq!(status.as_u16(), 401);
    let (status, _) = cp.anon().raw(Method::POST, "/graphql", Some(b"not even json".to_vec()), Duration::from_secs(5)).await.unwrap();
    assert_eq!(status.as_u16(), 401, "no body is read before the caller is known");
    let forged = HttpApi::new(&cp.url, Some("nvs_forged".into())).unwrap();
    assert_eq!(forged.call::<_, Value>(Method::POST, "/graphql", Some(&json!({"query": "{ me { username } }"}))).await.unwrap_err().status(), Some(401));
    cp.stop().await;
}

#[tokio::test]
async fn another_organizations_objects_read_as_missing() {
    let cp = Cp::with_orgs(Config::default()).await;
    let (alice, bob) = (cp.login("alice").await, cp.login("bob").await);
    let (exec, _) = cp.executor_client(&bob, None).await;
    exec.sync_executor(&sync_req("g-edge", ExecutorKind::Agent, "1.0.0")).await.unwrap();
    deploy(&bob, "g-edge", "g-node").await.unwrap();
    let mine = data(&bob, "{ node(name: \"g-node\") { name } executor(name: \"g-edge\") { name } }", json!({})).await;
    assert_eq!(mine, json!({"node": {"name": "g-node"}, "executor": {"name": "g-edge"}}));
    let theirs = data(&alice, "{ node(name: \"g-node\") { name } executor(name: \"g-edge\") { name } nodes { name } }", json!({})).await;
    assert_eq!(theirs, json!({"node": null, "executor": null, "nodes": []}), "the same answer as for a name nobody has");
    // A mutation on it: the same NOT_FOUND as for a name nobody has.
    let r = gql(&alice, "mutation { deleteNode(name: \"g-node\") { name } }", json!({})).await;
    let r2 = gql(&alice, "mutation { deleteNode(name: \"nobody-has\") { name } }", json!({})).await;
    assert_eq!(error(&r).0, "NOT_FOUND");
    assert_eq!(error(&r).0, error(&r2).0);
    cp.stop().await;
}

#[tokio::test]
async fn introspection_is_off_unless_enabled_and_queries_are_bounded() {
    let introspect = "{ __schema { queryType { name } } }";
    let cp = Cp::with_orgs(Config::default()).await;
    let alice = cp.login("alice").await;
    assert_eq!(data(&alice, introspect, json!({})).await, json!({"__schema": null}), "introspection answered while off");
    // Too costly: lists cost their limit times their selection.
    let many: String = (0..10).map(|i| format!("a{i}: nodes(limit: 1000) {{ name phase spec }} ")).collect();
    let r = gql(&alice, &format!("{{ {many} }}"), json!({})).await;
    assert!(error(&r).1.contains("too complex"), "{r}");
    data(&alice, "{ nodes(limit: 1000) { name phase spec } }", json!({})).await;
    cp.stop().await;

    let cp = Cp::with_orgs(Config { graphql_introspection: true, ..Config::default() }).await;
    let alice = cp.login("alice").await;
    assert_eq!(data(&alice, introspect, json!({})).await["__schema"]["queryType"]["name"], "Query");
    // Too deep: introspection's self-nesting types, past the depth limit.
    let deep = format!(
        "{{ __schema {{ types {{ {}name{} }} }} }}",
        "fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ", " } } } } } } } } }"
    );
    let r = gql(&alice, &deep, json!({})).await;
    assert!(error(&r).1.contains("nested too deep"), "{r}");
    cp.stop().await;
}

#[test]
fn this_suite_passes_on_postgres() {
    rerun_on_postgres("this_suite_passes_on_postgres");
}
