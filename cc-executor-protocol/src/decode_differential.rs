//! Property tests: the `process.output` fast path and the general decoder agree on generated
//! frames (as the encoder and serde_json write them, hand-built with every kind of escape, and
//! mutated), and the encoder writes what serde_json writes. `fuzz/` runs the same differential
//! unbounded.

use std::borrow::Cow;
use std::fmt::Write;

use proptest::prelude::*;

use crate::codec::decode_output_fast;
use crate::{method, Notification, OutputParams, OutputStream, ServerFrame, ServerNotification};

/// Both paths read `text` alike: when the fast path gives a value, the general path gives the
/// same `process.output`; and `decode` is the general path's answer either way.
fn assert_agree(text: &str) -> Result<(), TestCaseError> {
    let general = ServerFrame::decode_general(text).map_err(|e| e.to_string());
    if let Some(fast) = decode_output_fast(text) {
        let fast = ServerFrame::Notification(ServerNotification::ProcessOutput(fast));
        prop_assert_eq!(Ok(fast), general.clone(), "{:?}", text);
    }
    let decoded = ServerFrame::decode(text).map_err(|e| e.to_string());
    prop_assert_eq!(decoded.is_ok(), general.is_ok(), "{:?}", text);
    if let (Ok(a), Ok(b)) = (decoded, general) {
        prop_assert_eq!(a, b, "{:?}", text);
    }
    Ok(())
}

/// Characters that matter to the codec, well represented.
fn data_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => (0x20u8..0x7f).prop_map(char::from),
        2 => (0u8..0x20).prop_map(char::from),
        2 => prop::sample::select(vec!['"', '\\', '/', 'u', '\u{7f}', 'é', '€', '𝄞', '\u{2028}', '\u{feff}', '\u{ffff}']),
        1 => any::<char>(),
    ]
}

fn data() -> impl Strategy<Value = String> {
    prop::collection::vec(data_char(), 0..48).prop_map(String::from_iter)
}

fn chunk_field() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![
        Just(None),
        (0u32..10).prop_map(Some),
        (u32::MAX - 2..=u32::MAX).prop_map(Some),
        any::<u32>().prop_map(Some),
    ]
}

prop_compose! {
    fn output_params()(
        stderr in any::<bool>(),
        data in data(),
        truncated in any::<bool>(),
        chunk_index in chunk_field(),
        total_chunks in chunk_field(),
    ) -> OutputParams<'static> {
        OutputParams {
            stream: if stderr { OutputStream::Stderr } else { OutputStream::Stdout },
            data: Cow::Owned(data),
            truncated,
            chunk_index,
            total_chunks,
        }
    }
}

/// A piece of a hand-built `data` string, as it appears between the quotes.
#[derive(Debug, Clone)]
enum Piece {
    /// Text, escaped as serde_json escapes it.
    Text(String),
    /// `\` and one character: the eight short escapes, `u` alone, or an invalid one.
    Escape(char),
    /// `\uXXXX` in lower or upper case hex, lone surrogates included.
    Unicode(u16, bool),
    /// A character as it is (a raw control character or quote breaks the frame).
    Raw(char),
}

/// Text with few control characters other than the five with short escapes (serde_json writes
/// the others as `\u00xx`, which the fast path leaves to the general one).
fn text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        6 => (0x20u8..0x7f).prop_map(char::from),
        2 => prop::sample::select(vec!['"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', 'é', '𝄞']),
        1 => any::<char>(),
    ];
    prop::collection::vec(c, 0..16).prop_map(String::from_iter)
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        8 => text().prop_map(Piece::Text),
        2 => prop::sample::select(vec!['"', '\\', '/', 'b', 'f', 'n', 'r', 't', 'u', 'x', '0', 'U'])
            .prop_map(Piece::Escape),
        1 => (any::<u16>(), any::<bool>()).prop_map(|(u, up)| Piece::Unicode(u, up)),
        1 => (0xd800u16..0xe000, any::<bool>()).prop_map(|(u, up)| Piece::Unicode(u, up)),
        1 => data_char().prop_map(Piece::Raw),
    ]
}

/// A chunk field as written: `null`, a number in or out of `u32` range, or an unusual number.
fn chunk_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => chunk_field().prop_map(|c| c.map_or("null".to_owned(), |n| n.to_string())),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "4294967296", "-1", "-0", "01", "00", "1.0", "1e3", "0x1", "true", "\"1\"", "", " 1", "1 ",
        ])
        .prop_map(str::to_owned),
    ]
}

/// One of `usual` most of the time, else one of `unusual`.
fn usual_or(
    usual: Vec<&'static str>,
    unusual: Vec<&'static str>,
) -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => prop::sample::select(usual),
        1 => prop::sample::select(unusual),
    ]
}

prop_compose! {
    fn hand_built_frame()(
        stream in usual_or(vec!["stdout", "stderr"], vec!["video", "Stdout", ""]),
        pieces in prop::collection::vec(piece(), 0..6),
        truncated in usual_or(vec!["true", "false"], vec!["null", "1", "True"]),
        chunk_index in chunk_text(),
        total_chunks in chunk_text(),
        end in usual_or(vec!["}}"], vec!["}} ", "},\"id\":null}", "}", "}}}", ",\"x\":1}}", "}}\n"]),
    ) -> String {
        let mut t = format!(
            r#"{{"jsonrpc":"2.0","method":"process.output","params":{{"type":"{stream}","data":""#
        );
        for piece in pieces {
            match piece {
                Piece::Text(s) => {
                    let quoted = serde_json::to_string(&s).unwrap();
                    t.push_str(&quoted[1..quoted.len() - 1]);
                }
                Piece::Escape(c) => {
                    t.push('\\');
                    t.push(c);
                }
                Piece::Unicode(u, true) => write!(t, "\\u{u:04X}").unwrap(),
                Piece::Unicode(u, false) => write!(t, "\\u{u:04x}").unwrap(),
                Piece::Raw(c) => t.push(c),
            }
        }
        write!(
            t,
            r#"","truncated":{truncated},"chunk_index":{chunk_index},"total_chunks":{total_chunks}{end}"#
        )
        .unwrap();
        t
    }
}

/// An edit of a frame's text: `(where, how many characters to remove, what to insert)`.
fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, usize, String)>> {
    let insert = prop_oneof![
        Just(String::new()),
        prop::sample::select(vec![
            "\"", "\\", "\\u", "\\u00", "{", "}", ",", ":", "null", "0", "9", " ", "\n", "\u{0}",
            "é",
        ])
        .prop_map(str::to_owned),
        data(),
    ];
    prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, insert), 1..4)
}

/// Apply `edits` to `text` at character boundaries.
fn mutate(text: &str, edits: &[(prop::sample::Index, usize, String)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, remove, insert) in edits {
        let at = at.index(chars.len() + 1);
        let end = (at + remove).min(chars.len());
        chars.splice(at..end, insert.chars());
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The encoder writes what serde_json writes, and both paths read it back as the value.
    #[test]
    fn encoded_frames_decode_to_their_value(p in output_params()) {
        let text = p.encode_frame();
        prop_assert_eq!(&text, &Notification::new(method::PROCESS_OUTPUT, &p).encode());
        let expected = ServerFrame::Notification(ServerNotification::ProcessOutput(p.clone()));
        prop_assert_eq!(&ServerFrame::decode_general(&text).unwrap(), &expected);
        prop_assert_eq!(&ServerFrame::decode(&text).unwrap(), &expected);
        // The fast path declines only the `\u00xx` escapes written for rarer control characters.
        let needs_u = p.data.bytes().any(|b| b < 0x20 && !b"\x08\x0c\n\r\t".contains(&b));
        prop_assert_eq!(decode_output_fast(&text).is_none(), needs_u, "{:?}", text);
        // Another layout of the same frame takes the general path to the same value.
        let pretty = serde_json::to_string_pretty(&Notification::new(method::PROCESS_OUTPUT, &p)).unwrap();
        prop_assert_eq!(&ServerFrame::decode(&pretty).unwrap(), &expected);
    }

    /// Hand-built frames with every kind of escape and number: the paths agree.
    #[test]
    fn hand_built_frames_decode_alike(text in hand_built_frame()) {
        assert_agree(&text)?;
    }

    /// Encoded frames with a few characters removed or inserted: the paths agree.
    #[test]
    fn mutated_frames_decode_alike(p in output_params(), edits in edits()) {
        assert_agree(&mutate(&p.encode_frame(), &edits))?;
    }
}

/// The hand-built frames do reach the fast path (or the differential proves little).
#[test]
fn hand_built_frames_take_the_fast_path() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = hand_built_frame();
    let fast = (0..256)
        .filter(|_| {
            let text = strategy.new_tree(&mut runner).unwrap().current();
            decode_output_fast(&text).is_some()
        })
        .count();
    assert!(fast >= 16, "only {fast} of 256 frames took the fast path");
}
