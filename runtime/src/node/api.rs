//! [`Api`]: the daemon's connection to the apiserver, made again when it
//! breaks (apiserver restarted, network blip). Callers take the current
//! [`Client`] for each call; one that sees the connection closed asks for
//! a new one, with a back-off between attempts.

use super::NodeError;
use noderun_client::{Client, ClientError, Endpoint};
use std::time::Duration;
use tokio::sync::Mutex;

/// How long to wait between connection attempts, at most.
const MAX_RETRY: Duration = Duration::from_secs(5);
/// A connection that does not answer a ping in this long is dead (a
/// half-open TCP connection never says so itself).
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `client`'s connection answers.
pub async fn answers(client: &Client) -> bool {
    matches!(
        tokio::time::timeout(PING_TIMEOUT, client.ping()).await,
        Ok(Ok(()))
    )
}

#[derive(Debug)]
pub struct Api {
    endpoint: Endpoint,
    token: String,
    purpose: &'static str,
    client: Mutex<Client>,
}

impl Api {
    /// Connect once; failing here is an error for the caller (a wrong
    /// address or token at start should stop the daemon).
    pub async fn connect(
        endpoint: Endpoint,
        token: String,
        purpose: &'static str,
    ) -> Result<Api, NodeError> {
        let client = Client::connect(&endpoint, &token, purpose)
            .await
            .map_err(NodeError::api(format!(
                "connecting to the apiserver at {endpoint}"
            )))?;
        tracing::info!(identity = client.identity(), %endpoint, "connected to the apiserver");
        Ok(Api {
            endpoint,
            token,
            purpose,
            client: Mutex::new(client),
        })
    }

    /// Another connection to the same apiserver (for a watch, which must
    /// not share a connection with writes: see the controllers' reflector).
    pub async fn another(&self, purpose: &'static str) -> Result<Api, NodeError> {
        Api::connect(self.endpoint.clone(), self.token.clone(), purpose).await
    }

    /// The current client.
    pub async fn client(&self) -> Client {
        self.client.lock().await.clone()
    }

    /// After `error` from a call: when the connection is gone, connect
    /// again (retrying until it works), so the next call has a live one.
    pub async fn recover(&self, error: &ClientError) {
        if !matches!(error, ClientError::Closed | ClientError::Connect { .. }) {
            return;
        }
        self.reconnect().await;
    }

    /// Connect again unless the current connection answers (retrying
    /// until it works).
    pub async fn reconnect(&self) {
        let mut client = self.client.lock().await;
        if answers(&client).await {
            return; // Someone else reconnected already.
        }
        let mut wait = Duration::from_millis(100);
        loop {
            match Client::connect(&self.endpoint, &self.token, self.purpose).await {
                Ok(fresh) => {
                    tracing::info!(endpoint = %self.endpoint, "reconnected to the apiserver");
                    *client = fresh;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, endpoint = %self.endpoint, "apiserver unreachable; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_RETRY);
                }
            }
        }
    }
}
