//! accel: a fast, drop-in replacement for `sam build`, `sam sync` and
//! `sam logs`.
//!
//! Data flows one way: the command line ([`cli`]) selects a project
//! ([`project`]), whose SAM template ([`template`]) is turned into a plan and
//! then into actions against AWS ([`aws`]).

pub mod aws;
pub mod build;
pub mod cli;
pub mod deploy;
pub mod logs;
pub mod package;
pub mod project;
pub mod sync;
pub mod template;
pub mod time;
pub mod watch;
