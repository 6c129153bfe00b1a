//! A fresh PostgreSQL schema per test, on the server named by MAILERD_TEST_POSTGRES_URL, so
//! PostgreSQL tests run in parallel without seeing each other's rows.
//!
//! Without the variable the tests print a `SKIP` line (straight to stderr, past the test
//! harness's capture) and pass. The schema is dropped when the guard is dropped, also when
//! the test panicked.

use std::io::Write as _;

pub const ENV: &str = "MAILERD_TEST_POSTGRES_URL";

/// The server URL, or None after printing why the test is skipped.
pub fn url_or_skip(test: &str) -> Option<String> {
    match std::env::var(ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            let _ = writeln!(std::io::stderr(), "SKIP {test} on PostgreSQL: {ENV} not set");
            None
        }
    }
}

/// A schema that exists for one test; `url` points its connections' search_path at it.
pub struct TestSchema {
    admin: String,
    pub name: String,
    pub url: String,
}

async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client
}

impl TestSchema {
    pub async fn create(admin: &str, test: &str) -> TestSchema {
        let mut r = [0u8; 4];
        getrandom::fill(&mut r).expect("random");
        let tag: String = test.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(30).collect();
        let name = format!("mailerd_t_{}_{:08x}", tag.to_lowercase(), u32::from_le_bytes(r));
        admin_client(admin).await.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("create schema");
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-c%20search_path%3D{name}");
        TestSchema { admin: admin.to_string(), name, url }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a runtime of our own on another thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let client = admin_client(&admin).await;
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await;
            });
        })
        .join();
    }
}
