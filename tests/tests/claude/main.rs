//! Claude runs (`cc_executor_client::claude`) against the real service, with stand-in `claude`
//! scripts printing recorded stream-json samples.

mod cli;
mod env;
