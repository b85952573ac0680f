//! The Prometheus exporter: serves what [`synctree_manager::metrics`] records at
//! `/metrics` over HTTP.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{BuildError, PrometheusBuilder};
use synctree_manager::metrics::describe;

/// The Prometheus exporter could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Binding the listener or installing the global recorder failed.
    #[error("starting the Prometheus exporter on {addr} failed")]
    Install {
        /// The address asked for.
        addr: SocketAddr,
        /// The exporter's error.
        #[source]
        source: BuildError,
    },
}

/// Installs a Prometheus recorder as the global one and serves `/metrics` over
/// HTTP on `addr`. Call once, inside the tokio runtime that should run the
/// listener (outside one, the exporter starts a thread with its own).
pub fn install_prometheus(addr: SocketAddr) -> Result<(), MetricsError> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|source| MetricsError::Install { addr, source })?;
    describe();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prometheus_exporter_reports_a_bad_address_as_a_typed_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(async { install_prometheus(addr) });
        assert!(
            matches!(result, Err(MetricsError::Install { addr: a, .. }) if a == addr),
            "{result:?}"
        );
    }
}
