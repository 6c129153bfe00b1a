//! The one integration-test binary: starts mailerd on loopback ports and talks SMTP to it.
