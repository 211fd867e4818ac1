//! Claude helpers: build safe `claude -p` command lines and parse stream-json.
