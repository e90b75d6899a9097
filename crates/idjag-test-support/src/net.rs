//! Loopback servers: every test server listens on `127.0.0.1:0`.

use tokio::net::TcpListener;

/// A listener on `127.0.0.1:0` and its `http://` base URL.
pub async fn loopback() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// Serves `router` on `listener` in a task of the current runtime.
pub fn serve(listener: TcpListener, router: axum::Router) {
    tokio::spawn(async move { axum::serve(listener, router).await });
}
