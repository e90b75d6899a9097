//! Configuration reload: file change, refusal of a bad file, SIGHUP, plans kept by streams.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Router};
use idjag_ops::listener::{Listener, ListenerConfig, Shutdown};
use idjag_ops::reload::{ReloadOutcome, Reloadable, Trigger, WatchOptions};
use tokio::sync::Notify;

use crate::support;

#[derive(Debug)]
struct Plan {
    greeting: String,
}

/// The planning pass: the file names the greeting directly or a file holding it (re-read on
/// every reload, as a secret file would be).
fn plan(path: &Path) -> Result<Plan, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.kind().to_string())?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| e.message().to_owned())?;
    if let Some(file) = table.get("greeting_file").and_then(|v| v.as_str()) {
        let greeting =
            std::fs::read_to_string(file).map_err(|e| format!("greeting_file: {}", e.kind()))?;
        return Ok(Plan {
            greeting: greeting.trim().to_owned(),
        });
    }
    match table.get("greeting").and_then(|v| v.as_str()) {
        Some(greeting) => Ok(Plan {
            greeting: greeting.to_owned(),
        }),
        None => Err("greeting: missing".to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_applies_to_new_requests_while_open_streams_keep_their_plan() {
    support::init();
    let dir = support::temp_dir("reload");
    let path = dir.join("server.toml");
    std::fs::write(&path, "greeting = \"one\"\n").unwrap();
    let plans = Reloadable::load(&path, plan).unwrap();
    assert_eq!(plans.current().greeting, "one");
    assert_eq!(plans.generation(), 1);
    let mut events = plans.subscribe();
    let shutdown = Shutdown::new();
    // SIGHUP off here: other tests of this binary send it.
    plans.watch(
        WatchOptions::new(false, Duration::from_millis(50), Duration::from_millis(50)),
        shutdown.clone(),
    );

    let release = Arc::new(Notify::new());
    let released = release.clone();
    let app = Router::new()
        .route(
            "/",
            get(|Extension(plan): Extension<Arc<Plan>>| async move { plan.greeting.clone() }),
        )
        .route(
            "/stream",
            get(move |Extension(plan): Extension<Arc<Plan>>| {
                let released = released.clone();
                async move {
                    // The plan is the one taken when the request started.
                    let stream = futures::stream::once(async move {
                        released.notified().await;
                        Ok::<_, std::convert::Infallible>(format!("stream saw {}", plan.greeting))
                    });
                    Body::from_stream(stream)
                }
            }),
        )
        .layer(plans.layer());
    let config = ListenerConfig::plain("127.0.0.1:0".parse().unwrap(), "tests on loopback");
    let listener = Listener::bind("reload", &config).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(listener.serve(app, shutdown.clone()));
    let client = reqwest::Client::new();
    let greeting = async || {
        client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(greeting().await, "one");

    let stream = client
        .get(format!("http://{addr}/stream"))
        .send()
        .await
        .unwrap();
    std::fs::write(&path, "greeting = \"two\"\n").unwrap();
    support::eventually("the new plan", async || greeting().await == "two").await;
    assert_eq!(plans.generation(), 2);
    events.wait_for(|e| e.generation == 2).await.unwrap();
    let event = events.borrow().clone();
    assert_eq!(event.trigger, Some(Trigger::FileChange));
    assert_eq!(
        event.outcome,
        Some(ReloadOutcome::Applied { generation: 2 })
    );
    release.notify_one();
    assert_eq!(stream.text().await.unwrap(), "stream saw one");

    // A bad file is refused with its reason; the running plan stays.
    std::fs::write(&path, "greting = \"three\"\n").unwrap();
    events
        .wait_for(|e| matches!(e.outcome, Some(ReloadOutcome::Refused { .. })))
        .await
        .unwrap();
    assert_eq!(
        events.borrow().outcome,
        Some(ReloadOutcome::Refused {
            reason: "greeting: missing".to_owned()
        })
    );
    assert_eq!(greeting().await, "two");
    assert_eq!(plans.generation(), 2);
    let logged = support::logs_matching(&[
        (
            "message",
            "configuration reload refused; keeping the running configuration",
        ),
        ("reason", "greeting: missing"),
    ]);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["path"], path.display().to_string());
    // Fixed: applied.
    std::fs::write(&path, "greeting = \"four\"\n").unwrap();
    support::eventually("the fixed plan", async || greeting().await == "four").await;
    assert_eq!(plans.generation(), 3);

    shutdown.trigger();
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_rereads_the_files_the_configuration_names() {
    support::init();
    let dir = support::temp_dir("sighup");
    let path = dir.join("server.toml");
    let secret = dir.join("greeting.txt");
    std::fs::write(&secret, "first\n").unwrap();
    std::fs::write(
        &path,
        format!("greeting_file = {:?}\n", secret.display().to_string()),
    )
    .unwrap();
    let plans = Reloadable::load(&path, plan).unwrap();
    assert_eq!(plans.current().greeting, "first");
    let shutdown = Shutdown::new();
    // File polling off: only the signal can see the change of the referenced file.
    let watcher = plans.watch(
        WatchOptions::new(true, Duration::ZERO, Duration::ZERO),
        shutdown.clone(),
    );
    let mut events = plans.subscribe();
    std::fs::write(&secret, "second\n").unwrap();
    // The watcher registers its SIGHUP stream when it starts running.
    tokio::time::sleep(Duration::from_millis(100)).await;
    support::sighup();
    tokio::time::timeout(
        Duration::from_secs(10),
        events.wait_for(|e| e.trigger == Some(Trigger::Signal)),
    )
    .await
    .expect("a reload on SIGHUP")
    .unwrap();
    assert_eq!(plans.current().greeting, "second");
    shutdown.trigger();
    watcher.await.unwrap();
}

#[tokio::test]
async fn a_bad_file_at_start_up_is_the_start_up_error() {
    let dir = support::temp_dir("reload-start");
    let path = dir.join("server.toml");
    std::fs::write(&path, "x = 1\n").unwrap();
    assert_eq!(
        Reloadable::load(&path, plan).unwrap_err(),
        "greeting: missing"
    );
    let missing = Reloadable::load(dir.join("none.toml"), plan).unwrap_err();
    assert_eq!(missing, "entity not found");
}
