//! SMTP protocol vocabulary shared by both directions: replies, commands, addresses, header
//! fields.
//!
//! Standards: RFC 5321 (SMTP), RFC 3463 (enhanced status codes), RFC 3461 (DSN parameters),
//! RFC 6531 (SMTPUTF8), RFC 5890 (IDNA).
//! Must not: know about policy, configuration or the store; parsers never panic and return
//! typed errors that the server maps to 500/501.

pub mod address;
pub mod codec;
pub mod command;
pub mod message;
pub mod reply;
pub mod xtext;
