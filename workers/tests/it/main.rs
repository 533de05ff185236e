//! Integration tests of switchboard-workers (one test binary).

mod backend;
mod jobs;
