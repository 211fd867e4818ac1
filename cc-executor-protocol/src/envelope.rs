//! The JSON-RPC 2.0 envelope: ids, requests, responses with their error object, and typed
//! notifications for encoding.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::method;
use crate::names::JSONRPC_VERSION;
use crate::params::{ControlParams, ControlType, ExecuteParams, InputParams};

/// A request or notification id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// A numeric id.
    Number(i64),
    /// A string id.
    Str(String),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// A client-to-service frame: a request (with `id`) or a notification (without).
///
/// `params` is kept raw so that a service can report validation failures per method.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The method name.
    pub method: String,
    /// Method parameters; absent for `pong`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// Absent for notifications; the response then carries no id either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
}

impl Request {
    /// A request with params and an optional id.
    pub fn new(method: impl Into<String>, params: Option<Value>, id: Option<Id>) -> Self {
        Request {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            method: method.into(),
            params,
            id,
        }
    }

    /// `execute` with the given params.
    pub fn execute(params: &ExecuteParams, id: Id) -> Self {
        Self::new(method::EXECUTE, Some(to_value(params)), Some(id))
    }

    /// `control` of the given type.
    pub fn control(kind: ControlType, id: Id) -> Self {
        Self::new(
            method::CONTROL,
            Some(to_value(&ControlParams { kind })),
            Some(id),
        )
    }

    /// `input`: text for the running command's stdin.
    pub fn input(params: &InputParams, id: Id) -> Self {
        Self::new(method::INPUT, Some(to_value(params)), Some(id))
    }

    /// The `pong` notification that answers a `ping`.
    pub fn pong() -> Self {
        Self::new(method::PONG, None, None)
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a Request always serializes")
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("protocol params always serialize")
}

/// The error object of an error response. `data` is always present (often `null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// One of [`code`](crate::code).
    pub code: i64,
    /// Human-readable message.
    pub message: String,
    /// Extra data; `null` when there is none.
    #[serde(default)]
    pub data: Value,
}

/// A service-to-client response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// Present on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Present on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
    /// Absent when the request had none or the error is not tied to a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
}

impl Response {
    /// A success response.
    pub fn ok(id: Option<Id>, result: Value) -> Self {
        Response {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            result: Some(result),
            error: None,
            id,
        }
    }

    /// An error response with `data: null`.
    pub fn error(id: Option<Id>, code: i64, message: impl Into<String>) -> Self {
        Response {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            result: None,
            error: Some(ErrorObject {
                code,
                message: message.into(),
                data: Value::Null,
            }),
            id,
        }
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a Response always serializes")
    }
}

/// A service-to-client notification with typed params, for encoding.
#[derive(Debug, Clone, Serialize)]
pub struct Notification<'a, P> {
    /// Always `"2.0"`.
    pub jsonrpc: &'static str,
    /// The method name.
    pub method: &'a str,
    /// The params.
    pub params: P,
}

impl<'a, P: Serialize> Notification<'a, P> {
    /// A notification of `method` with `params`.
    pub fn new(method: &'a str, params: P) -> Self {
        Notification {
            jsonrpc: JSONRPC_VERSION,
            method,
            params,
        }
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a Notification always serializes")
    }

    /// Append the encoded frame to `buf` (lets a hot path reuse one buffer).
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        serde_json::to_writer(buf, self).expect("a Notification always serializes")
    }
}
