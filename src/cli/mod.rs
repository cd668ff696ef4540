//! ebbctl's library half: its config file and its connection to the control API.

pub mod client;
pub mod config;
pub mod errors;
pub mod help_text;
pub mod output;
