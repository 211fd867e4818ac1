//! How the `schema` feature writes results and reads commands as JSON: durations as seconds,
//! run statuses by their wire name. [`timeout_secs`] also serves the parameters of a tool of
//! your own, and [`standard_formats`] keeps the schemas to what every JSON Schema validator
//! knows.

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::{Map, Value};

use crate::event::RunStatus;

/// A result a tool returns, with what its reader must be told about it ([`BoundedOutcome`],
/// [`BoundedResult`]): a tool answers the value when there are no notes, and an error that says
/// the notes first otherwise.
///
/// [`BoundedOutcome`]: crate::capture::BoundedOutcome
/// [`BoundedResult`]: crate::claude::BoundedResult
pub trait Answer: serde::Serialize {
    /// Plain sentences about what went wrong; empty for a success.
    fn notes(&self) -> Vec<String>;

    /// Whether the notes are all there is to say (nothing ran, so the value holds nothing).
    fn notes_only(&self) -> bool {
        false
    }
}

impl Answer for crate::capture::BoundedOutcome {
    fn notes(&self) -> Vec<String> {
        self.notes()
    }

    fn notes_only(&self) -> bool {
        self.not_run.is_some()
    }
}

impl Answer for crate::claude::BoundedResult {
    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}

/// A duration as seconds (`1.5`).
pub(crate) fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Read a `timeout_secs` parameter: whole seconds, at least 1 (0 is an error that names
/// `timeout_secs`); absent or `null` for none. For `#[serde(deserialize_with = …)]`.
pub fn timeout_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        Some(0) => Err(D::Error::custom("`timeout_secs` must be at least 1")),
        secs => Ok(secs.map(Duration::from_secs)),
    }
}

/// A list given as one value, or `null`.
pub(crate) fn one<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.into_iter().collect())
}

/// A list, or `null` for none.
pub(crate) fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Why a whole output is not in a file, as a sentence.
pub(crate) fn unsaved<S: Serializer>(why: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match why {
        Some(why) => s.serialize_some(&crate::output_dir::unsaved(why)),
        None => s.serialize_none(),
    }
}

/// A run status by its wire name (`completed`, `failed`, `canceled`, …).
pub(crate) fn status<S: Serializer>(status: &RunStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.as_str())
}

/// The `format` values the JSON Schema standard defines (draft 2020-12).
pub const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Remove, everywhere in `schema`, the `format` keywords whose value JSON Schema does not define
/// (schemars writes `uint32`, `int64`, `double`, … for Rust's number types, and strict
/// validators such as the TypeScript MCP SDK's warn about each). The bounds stay: an unsigned
/// integer keeps its `minimum: 0`. Values (`default`, `const`, `enum`, `examples`) are left as
/// they are, and a property named `format` is not a keyword.
///
/// ```
/// use serde_json::json;
///
/// let mut schema = json!({
///     "type": "object",
///     "properties": {
///         "n": {"type": "integer", "format": "uint32", "minimum": 0},
///         "at": {"type": "string", "format": "date-time"},
///         "format": {"type": "string"},
///     },
/// });
/// cc_executor_client::schema::standard_formats(schema.as_object_mut().unwrap());
/// assert_eq!(schema["properties"]["n"], json!({"type": "integer", "minimum": 0}));
/// assert_eq!(schema["properties"]["at"]["format"], "date-time");
/// assert_eq!(schema["properties"]["format"], json!({"type": "string"}));
/// ```
pub fn standard_formats(schema: &mut Map<String, Value>) {
    if let Some(Value::String(f)) = schema.get("format") {
        if !STANDARD_FORMATS.contains(&f.as_str()) {
            schema.remove("format");
        }
    }
    for (key, value) in schema.iter_mut() {
        match (key.as_str(), value) {
            ("default" | "const" | "enum" | "examples", _) => {}
            // Maps of names to schemas: each value is a schema.
            (
                "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas",
                Value::Object(named),
            ) => {
                named
                    .values_mut()
                    .filter_map(Value::as_object_mut)
                    .for_each(standard_formats);
            }
            (_, Value::Object(sub)) => standard_formats(sub),
            (_, Value::Array(items)) => {
                items
                    .iter_mut()
                    .filter_map(Value::as_object_mut)
                    .for_each(standard_formats);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::capture::BoundedOutcome;
    use crate::jobs::{JobReport, OutputPage};

    /// Tools need object schemas with the fields at the top, also those of flattened parts.
    #[test]
    fn results_have_flat_object_schemas() {
        for (schema, fields) in [
            (
                schemars::schema_for!(BoundedOutcome),
                &[
                    "status",
                    "duration_secs",
                    "stdout",
                    "output_file",
                    "truncated",
                ][..],
            ),
            (
                schemars::schema_for!(JobReport),
                &["id", "kind", "state", "runtime_secs", "notes", "claude"][..],
            ),
            (
                schemars::schema_for!(OutputPage),
                &["id", "state", "data"][..],
            ),
        ] {
            let v = serde_json::to_value(&schema).unwrap();
            assert_eq!(v["type"], "object", "{v}");
            for f in fields {
                assert!(v["properties"].get(f).is_some(), "no {f} in {v}");
            }
        }
    }
}
