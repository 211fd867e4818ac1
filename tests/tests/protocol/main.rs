//! The wire types (`cc_executor_client::protocol`) against the reference transcripts.

mod transcripts;
