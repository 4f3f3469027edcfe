//! tufa's HTTP service.
//!
//! - `/api/v1/...`: the RSTUF v1 API, same paths, payloads, status codes and
//!   task states, so the `rstuf` CLI and Warehouse's RSTUF integration work
//!   unchanged; additions (`GET /api/v1/tasks`) sit beside it.
//! - `/metadata/{file}`: the published TUF metadata, compressed on request.
//! - `/healthz` and `/metrics` (Prometheus text format).

mod api;
mod error;
mod index;
mod metadata;
mod ops;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::compression::CompressionLayer;
use tufa_repository::Repository;

pub use error::ApiError;

/// The largest request body accepted (a 10,000-artifact request is about 3 MB).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The whole service as one router.
pub fn router(repository: Repository) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(metadata::routes())
        .merge(ops::routes())
        .merge(index::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CompressionLayer::new())
        .with_state(repository)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    repository: Repository,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(repository))
        .with_graceful_shutdown(shutdown)
        .await
}
