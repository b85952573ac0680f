//! The Prometheus exporter: serves what [`synctree_manager::metrics`] records at
//! `/metrics` over HTTP (every other path is 404).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use synctree_manager::metrics::describe;

/// The Prometheus exporter could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Installing the global recorder failed (one is installed already).
    #[error("installing the Prometheus recorder for {addr} failed")]
    Install {
        /// The address asked for.
        addr: SocketAddr,
        /// The exporter's error.
        #[source]
        source: BuildError,
    },
    /// Binding the listener failed.
    #[error("cannot serve metrics on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Installs a Prometheus recorder as the global one and serves `/metrics` over
/// HTTP on `addr` from a task of the current tokio runtime; returns the bound
/// address (port 0 picks a free one).
pub async fn install_prometheus(addr: SocketAddr) -> Result<SocketAddr, MetricsError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|source| MetricsError::Install { addr, source })?;
    describe();
    let app = Router::new()
        .route("/metrics", get(render))
        .with_state(handle);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(bound)
}

async fn render(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_address_is_a_typed_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(install_prometheus(addr));
        assert!(
            matches!(result, Err(MetricsError::Bind { addr: a, .. }) if a == addr),
            "{result:?}"
        );
    }
}
