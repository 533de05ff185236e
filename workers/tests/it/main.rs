//! Integration tests of switchboard-workers (one test binary).

mod jobs;
