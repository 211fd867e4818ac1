//! Round trip of the wire types over every frame of every reference transcript: each frame decodes
//! into the typed `protocol` types, and encoding it again gives a frame of the same shape (same
//! keys in the same order, same JSON kinds, same values).

use cc_executor_client::protocol::{
    ControlParams, ExecuteParams, Request, ServerFrame, ServerNotification,
};
use serde_json::Value;

/// Every `(file, dir, frame)` of the transcripts; raw (non-JSON) frames as strings.
fn frames() -> Vec<(String, String, Value)> {
    let dir = tests::fixtures_dir().join("transcripts");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "transcripts missing in {}",
        dir.display()
    );
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let entry: Value = serde_json::from_str(line).unwrap();
            if let Some(frame) = entry.get("frame") {
                let dir = entry["dir"].as_str().unwrap().to_owned();
                out.push((name.clone(), dir, frame.clone()));
            }
        }
    }
    out
}

/// Same shape: same keys in the same order, same kinds, equal strings / bools / numbers.
fn assert_same_shape(want: &Value, got: &Value, path: &str) {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<_> = a.keys().collect();
            let kb: Vec<_> = b.keys().collect();
            assert_eq!(ka, kb, "keys at {path}");
            for (k, v) in a {
                assert_same_shape(v, &b[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "length at {path}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same_shape(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            assert_eq!(a.as_f64(), b.as_f64(), "number at {path}");
        }
        (a, b) => assert_eq!(a, b, "value at {path}"),
    }
}

#[test]
fn every_received_frame_decodes_and_encodes_to_the_same_shape() {
    let mut seen = std::collections::BTreeSet::new();
    for (file, dir, frame) in frames() {
        if dir != "recv" {
            continue;
        }
        let text = serde_json::to_string(&frame).unwrap();
        let decoded = ServerFrame::decode(&text).unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
        if let ServerFrame::Notification(n) = &decoded {
            assert!(
                !matches!(n, ServerNotification::Unknown { .. }),
                "{file}: a known method decoded as unknown: {text}"
            );
            seen.insert(n.method().to_owned());
        }
        let again: Value = serde_json::from_str(&decoded.encode()).unwrap();
        assert_same_shape(&frame, &again, &file);
    }
    for method in [
        "connected",
        "ping",
        "process.started",
        "process.output",
        "process.paused",
        "process.resumed",
        "process.canceled",
        "process.completed",
        "error.token_limit_exceeded",
        "error.rate_limit_exceeded",
        "task.early_completion",
    ] {
        assert!(seen.contains(method), "no transcript exercised {method}");
    }
}

#[test]
fn every_sent_frame_decodes_as_a_request_and_encodes_to_the_same_shape() {
    let mut raw = 0;
    for (file, dir, frame) in frames() {
        if dir != "send" {
            continue;
        }
        let Value::Object(_) = frame else {
            // `{not json`: a service must answer it with an error, so it must not decode.
            let text = frame.as_str().unwrap();
            assert!(serde_json::from_str::<Request>(text).is_err(), "{file}");
            raw += 1;
            continue;
        };
        let text = serde_json::to_string(&frame).unwrap();
        let req: Request =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}\n{text}"));
        let again: Value = serde_json::from_str(&req.encode()).unwrap();
        assert_same_shape(&frame, &again, &file);
        let params = req.params.clone().unwrap_or(Value::Null);
        match req.method.as_str() {
            "execute" if params.get("command").is_some() => {
                let p: ExecuteParams = serde_json::from_value(params).unwrap();
                assert!(!p.command.is_empty() || file.starts_with("k_"), "{file}");
            }
            "control" => {
                let typed = serde_json::from_value::<ControlParams>(params);
                // Only the recorded bad type (`STOP`) is refused.
                assert_eq!(
                    typed.is_err(),
                    file.starts_with("x_invalid_control"),
                    "{file}"
                );
            }
            _ => {}
        }
    }
    assert!(raw >= 1, "the invalid-JSON frames were seen");
}

#[test]
fn pong_is_exactly_what_the_reference_client_sends() {
    assert_eq!(
        Request::pong().encode(),
        r#"{"jsonrpc":"2.0","method":"pong"}"#
    );
}
