//! How results are written as JSON with the `schema` feature: durations as seconds, run statuses
//! by their wire name.

use std::time::Duration;

use serde::Serializer;

use crate::event::RunStatus;

/// A duration as seconds (`1.5`).
pub(crate) fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
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
