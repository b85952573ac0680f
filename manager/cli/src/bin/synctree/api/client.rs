//! A client of the running node's API, for the CLI commands that find their
//! store held by `serve`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::net::TcpStream;

use super::ErrorJson;
use crate::error::CliError;

/// Longest wait to connect to the API: it is local (or on a LAN).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read (an export of a whole context): far above any context a
/// node answers for in one response, small enough that a wrong server cannot
/// take all of the client's memory.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024 * 1024;

/// Where the API is and how to authenticate.
#[derive(Clone, Debug)]
pub(crate) struct ApiClient {
    addr: SocketAddr,
    token: Option<String>,
}

impl ApiClient {
    /// A client of the API at `addr`, sending `token` when there is one.
    pub(crate) fn new(addr: SocketAddr, token: Option<String>) -> Self {
        ApiClient { addr, token }
    }

    /// Sends one request; a 2xx answer's body, or the node's error.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Bytes, CliError> {
        let (status, bytes) = self.request(method, path, body).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        let answer: Option<ErrorJson> = serde_json::from_slice(&bytes).ok();
        Err(match answer {
            Some(e) => CliError::Remote {
                kind: e.kind,
                message: synctree_primitives::wire::escape_untrusted(&e.error),
            },
            None => self.unreachable(format!("unexpected answer {status}")),
        })
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), CliError> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.addr))
            .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(self.unreachable(e)),
            Err(_) => return Err(self.unreachable(format!("no answer within {CONNECT_TIMEOUT:?}"))),
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(e))?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.addr.to_string());
        if let Some(token) = &self.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| self.unreachable(e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let collected = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        Ok((status, collected.to_bytes()))
    }

    fn unreachable(&self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> CliError {
        CliError::ApiUnreachable {
            addr: self.addr.to_string(),
            source: source.into(),
        }
    }
}

/// One path segment, percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_encode_everything_but_letters_and_digits() {
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("ctx1"), "ctx1");
    }
}
