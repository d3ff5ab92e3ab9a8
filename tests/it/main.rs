//! accel's integration tests, in one test binary: the `accel` binary run in
//! scratch projects, against the local cloud (tests/cloud/server.py) where a
//! test needs AWS. Snapshots of the human output live in `snapshots/`.

mod build;
mod cached;
mod cli;
mod crlf;
mod faults;
mod foreach;
#[cfg(unix)] // its one test holds a folder with `tail`
mod held;
mod hotswap;
mod install;
mod local_cloud;
mod logs;
mod methods;
mod node;
mod proxy;
mod python;
mod remote_cache;
mod safety;
mod shapes;
mod support;
mod sync;
mod sync_infra;
mod sync_lambda;
mod watch;
mod work;
