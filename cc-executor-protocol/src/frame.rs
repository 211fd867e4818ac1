//! Frames a service sends, typed, and the general (serde) decoder.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::codec::decode_output_fast;
use crate::envelope::{ErrorObject, Id, Notification, Response};
use crate::method;
use crate::names::JSONRPC_VERSION;
use crate::params::*;

/// Every frame a service sends, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    /// A response to a request.
    Response(Response),
    /// A notification.
    Notification(ServerNotification),
}

/// A service notification, typed by method. Unknown methods are kept, not rejected.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerNotification {
    /// `connected`.
    Connected(ConnectedParams),
    /// `ping`.
    Ping(PingParams),
    /// `process.started`.
    ProcessStarted(ProcessStatusParams),
    /// `process.output`.
    ProcessOutput(OutputParams<'static>),
    /// `process.paused`.
    ProcessPaused(ProcessStatusParams),
    /// `process.resumed`.
    ProcessResumed(ProcessStatusParams),
    /// `process.canceled`.
    ProcessCanceled(ProcessStatusParams),
    /// `process.completed`.
    ProcessCompleted(CompletedParams),
    /// `process.error`.
    ProcessError(ProcessStatusParams),
    /// `error.token_limit_exceeded`.
    TokenLimitExceeded(TokenLimitParams),
    /// `error.rate_limit_exceeded`.
    RateLimitExceeded(RateLimitParams),
    /// `task.early_completion`.
    EarlyCompletion(EarlyCompletionParams),
    /// `hook.warning` (shape not fixed by the protocol).
    HookWarning(Value),
    /// Any other method.
    Unknown {
        /// The method name.
        method: String,
        /// The params, `null` when absent.
        params: Value,
    },
}

impl ServerNotification {
    /// The wire method name.
    pub fn method(&self) -> &str {
        match self {
            ServerNotification::Connected(_) => method::CONNECTED,
            ServerNotification::Ping(_) => method::PING,
            ServerNotification::ProcessStarted(_) => method::PROCESS_STARTED,
            ServerNotification::ProcessOutput(_) => method::PROCESS_OUTPUT,
            ServerNotification::ProcessPaused(_) => method::PROCESS_PAUSED,
            ServerNotification::ProcessResumed(_) => method::PROCESS_RESUMED,
            ServerNotification::ProcessCanceled(_) => method::PROCESS_CANCELED,
            ServerNotification::ProcessCompleted(_) => method::PROCESS_COMPLETED,
            ServerNotification::ProcessError(_) => method::PROCESS_ERROR,
            ServerNotification::TokenLimitExceeded(_) => method::TOKEN_LIMIT_EXCEEDED,
            ServerNotification::RateLimitExceeded(_) => method::RATE_LIMIT_EXCEEDED,
            ServerNotification::EarlyCompletion(_) => method::EARLY_COMPLETION,
            ServerNotification::HookWarning(_) => method::HOOK_WARNING,
            ServerNotification::Unknown { method, .. } => method,
        }
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        let m = self.method();
        match self {
            ServerNotification::Connected(p) => Notification::new(m, p).encode(),
            ServerNotification::Ping(p) => Notification::new(m, p).encode(),
            ServerNotification::ProcessStarted(p)
            | ServerNotification::ProcessPaused(p)
            | ServerNotification::ProcessResumed(p)
            | ServerNotification::ProcessCanceled(p)
            | ServerNotification::ProcessError(p) => Notification::new(m, p).encode(),
            ServerNotification::ProcessOutput(p) => p.encode_frame(),
            ServerNotification::ProcessCompleted(p) => Notification::new(m, p).encode(),
            ServerNotification::TokenLimitExceeded(p) => Notification::new(m, p).encode(),
            ServerNotification::RateLimitExceeded(p) => Notification::new(m, p).encode(),
            ServerNotification::EarlyCompletion(p) => Notification::new(m, p).encode(),
            ServerNotification::HookWarning(p) => Notification::new(m, p).encode(),
            ServerNotification::Unknown { params, .. } => Notification::new(m, params).encode(),
        }
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed frame: {source}")]
pub struct DecodeError {
    #[from]
    source: serde_json::Error,
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<ErrorObject>,
    #[serde(default)]
    id: Option<Id>,
}

impl ServerFrame {
    /// Decode one text frame from a service.
    ///
    /// A frame with a `method` is a notification; one with `result` or `error` is a response.
    /// Anything else, or known params of the wrong shape, is a [`DecodeError`].
    pub fn decode(text: &str) -> Result<ServerFrame, DecodeError> {
        if let Some(out) = decode_output_fast(text) {
            return Ok(ServerFrame::Notification(
                ServerNotification::ProcessOutput(out),
            ));
        }
        Self::decode_general(text)
    }

    /// The general decoder alone, without the fast path for `process.output` (for differential
    /// tests of the two; [`ServerFrame::decode`] is what to call).
    #[doc(hidden)]
    pub fn decode_general(text: &str) -> Result<ServerFrame, DecodeError> {
        let raw: RawFrame<'_> = serde_json::from_str(text)?;
        if let Some(m) = raw.method {
            let params = raw.params.map(RawValue::get).unwrap_or("null");
            return Ok(ServerFrame::Notification(decode_notification(&m, params)?));
        }
        if raw.result.is_none() && raw.error.is_none() {
            return Err(DecodeError {
                source: serde::de::Error::custom("frame has neither method, result nor error"),
            });
        }
        Ok(ServerFrame::Response(Response {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            result: raw.result,
            error: raw.error,
            id: raw.id,
        }))
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        match self {
            ServerFrame::Response(r) => r.encode(),
            ServerFrame::Notification(n) => n.encode(),
        }
    }
}

fn decode_notification(m: &str, params: &str) -> Result<ServerNotification, serde_json::Error> {
    use serde_json::from_str as de;
    Ok(match m {
        method::CONNECTED => ServerNotification::Connected(de(params)?),
        method::PING => ServerNotification::Ping(de(params)?),
        method::PROCESS_STARTED => ServerNotification::ProcessStarted(de(params)?),
        method::PROCESS_OUTPUT => {
            let p: OutputParams<'_> = de(params)?;
            ServerNotification::ProcessOutput(p.into_owned())
        }
        method::PROCESS_PAUSED => ServerNotification::ProcessPaused(de(params)?),
        method::PROCESS_RESUMED => ServerNotification::ProcessResumed(de(params)?),
        method::PROCESS_CANCELED => ServerNotification::ProcessCanceled(de(params)?),
        method::PROCESS_COMPLETED => ServerNotification::ProcessCompleted(de(params)?),
        method::PROCESS_ERROR => ServerNotification::ProcessError(de(params)?),
        method::TOKEN_LIMIT_EXCEEDED => ServerNotification::TokenLimitExceeded(de(params)?),
        method::RATE_LIMIT_EXCEEDED => ServerNotification::RateLimitExceeded(de(params)?),
        method::EARLY_COMPLETION => ServerNotification::EarlyCompletion(de(params)?),
        method::HOOK_WARNING => ServerNotification::HookWarning(de(params)?),
        other => ServerNotification::Unknown {
            method: other.to_owned(),
            params: de(params)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_method_and_fields_decode() {
        let f = ServerFrame::decode(
            r#"{"jsonrpc":"2.0","method":"future.thing","params":{"a":1},"extra":true}"#,
        )
        .unwrap();
        assert!(matches!(
            f,
            ServerFrame::Notification(ServerNotification::Unknown { ref method, .. }) if method == "future.thing"
        ));
        let f = ServerFrame::decode(
            r#"{"jsonrpc":"2.0","method":"connected","params":{"session_id":"x","version":"1","capabilities":[],"new":1}}"#,
        )
        .unwrap();
        assert!(matches!(
            f,
            ServerFrame::Notification(ServerNotification::Connected(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(ServerFrame::decode("{not json").is_err());
        assert!(ServerFrame::decode("[]").is_err());
        assert!(ServerFrame::decode(r#"{"jsonrpc":"2.0"}"#).is_err());
        assert!(ServerFrame::decode(
            r#"{"jsonrpc":"2.0","method":"process.output","params":{"type":"video"}}"#
        )
        .is_err());
    }
}
