//! The allowlist splitter never panics, and an accepted line's words, re-quoted, split back to
//! the same words.
#![no_main]

use cc_executor_server::allow::{quote, split_words};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    if let Ok(words) = split_words(line) {
        let again = quote(&words);
        assert_eq!(
            split_words(&again).as_ref(),
            Ok(&words),
            "{line:?} re-quoted as {again:?}"
        );
    }
});
