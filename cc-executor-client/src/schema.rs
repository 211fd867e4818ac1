//! How the `schema` feature writes results and reads commands as JSON: durations as seconds,
//! run statuses by their wire name. [`timeout_secs`] also serves the parameters of a tool of
//! your own.

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

use crate::event::RunStatus;

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
