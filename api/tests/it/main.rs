//! Integration tests of the `switchboard` API crate: one test binary.

mod admin;
mod agent;
mod callbacks;
mod chaos;
mod cli;
mod console;
mod console_browser;
mod facade;
mod fidelity;
mod hardening;
mod js_client;
mod metrics;
mod openapi;
mod python_client;
mod recordings;
mod recordings_s3;
mod retention;
mod review;
mod scale_out;
mod scalelite;
mod server_metrics;
mod support;
mod tenants;
mod usage;
