//! API errors: a status and one line saying what was wrong, as `{"error": "…"}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use osprey_store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    /// A failure of the server itself (500): logged whole, answered without its detail
    /// (a database's or the operating system's message is the operator's, not the caller's).
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "request failed inside the server");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (the server's log has the detail)",
        )
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }
    /// Also what a caller gets for something that exists but is not theirs.
    pub fn not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
    pub fn busy(message: impl Into<String>, retry_after: u64) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: message.into(),
            retry_after: Some(retry_after),
        }
    }
    /// 503: storage failed or the server is stopping; the caller retries.
    pub fn unavailable(message: impl Into<String>, retry_after: u64) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            retry_after: Some(retry_after),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            StoreError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            StoreError::Invalid(m) => ApiError::bad_request(m),
            other => {
                tracing::error!(error = %other, "storage failed");
                ApiError::unavailable("storage failed (the server's log has the detail)", 5)
            }
        }
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> ApiError {
        match e {
            ServerError::Store(e) => e.into(),
            ServerError::Invalid(m) => ApiError::bad_request(m),
            ServerError::Image(e) => ApiError::bad_request(e.to_string()),
            ServerError::Bus(_) => {
                tracing::error!(error = %e, "the bus failed");
                ApiError::unavailable("the bus failed", 5)
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Runs CPU work (decoding, parsing, compiling) on a blocking thread, off the async workers;
/// a task that panicked is a 500.
pub async fn blocking<T, F>(work: F) -> ApiResult<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)
}

/// A failure of the server's own work, outside a request: starting up, scanning, the bus, the
/// secret key, the demo. The message is one line naming what failed; the variant says what
/// kind of failure it is, so a caller can tell bad input from a failing dependency.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store failed, or refused what it was given.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An image could not be found, reached or read.
    #[error(transparent)]
    Image(#[from] osprey_image::ImageError),
    /// Something the server was given is unusable: an option, a file, a stored setting, an
    /// image name, an uploaded list.
    #[error("{0}")]
    Invalid(String),
    /// The NATS server, or one of the streams and buckets the scale-out keeps there.
    #[error("{0}")]
    Bus(String),
    /// An engine failed: the inventory, the malware rules or scan, the vulnerability database.
    #[error("{0}")]
    Engine(String),
    /// A peer reached over HTTP failed or refused: an output's receiver, the webhook the demo
    /// posts its story to.
    #[error("{0}")]
    Remote(String),
    /// The server key could not be read, or something sealed with it could not be opened.
    #[error("{0}")]
    Secret(String),
    /// The operating system refused: threads, files, sockets.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl ServerError {
    /// A bus failure, from any error of the NATS client.
    pub fn bus(e: impl std::fmt::Display) -> ServerError {
        ServerError::Bus(e.to_string())
    }
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
        let what = what.into();
        move |source| ServerError::Io { what, source }
    }
}

pub type ServerResult<T> = Result<T, ServerError>;
