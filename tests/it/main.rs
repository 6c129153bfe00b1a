//! The one integration-test binary: starts mailerd on loopback ports and talks SMTP to it
//! with a real client over TCP (and TLS), as DESIGN §7 asks.

mod harness;

mod api_batch;
mod api_injection;
mod api_raw;
mod api_scopes;
mod config_errors;
mod crash_durability;
mod dashboard;
mod abuse;
mod bounce_lines;
mod bounces;
mod breaker;
mod checklist;
mod cluster;
mod delivery;
mod dkim;
mod dsn_golden;
mod feedback_corpus;
mod feedback_fuzz;
mod feedback_loop;
mod forged_bounces;
mod http_api;
mod idempotency;
mod login_throttle;
mod instance;
mod logs;
mod metrics_parse;
mod outbound;
mod pipelining;
mod queue_ops;
mod postfix_peer;
mod relay_tricks;
mod replies;
mod sender_login;
mod sendmail;
mod shutdown;
mod status;
mod starttls_auth;
mod store_conformance;
mod submission_checks;
mod tidy;
mod tools;
mod swaks;
mod webhooks;
