//! The file-descriptor budget: raise the soft `RLIMIT_NOFILE` to the hard limit at start, keep
//! descriptors aside for the store, outbound deliveries, DNS and the process itself, and size
//! the three listeners' slot pools (MX, submission, HTTP) from what is left, so no listener can
//! run the process out of descriptors and starve the others (EMFILE on accept).
//!
//! Standards: POSIX getrlimit/setrlimit.
//! Must not: bind, accept or open anything; it computes numbers (and raises one limit).

use crate::config::Config;

/// Descriptors the process needs besides sessions: the store (SQLite files and the writer, or
/// a PostgreSQL pool of 16), listening sockets, logs, webhooks, the resolver, and slack.
const BASE_RESERVE: u64 = 128;

/// How many descriptors each listener may use at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pools {
    pub smtp: usize,
    pub submission: usize,
    pub http: usize,
    /// The process's descriptor limit after raising it.
    pub nofile: u64,
    /// Descriptors kept aside for everything but sessions.
    pub reserved: u64,
}

/// Raises the soft descriptor limit to the hard one; the limit now in force.
pub fn raise_nofile() -> u64 {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 1024;
        }
        if rl.rlim_cur < rl.rlim_max {
            let raised = libc::rlimit { rlim_cur: rl.rlim_max, rlim_max: rl.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                rl.rlim_cur = rl.rlim_max;
            }
        }
    }
    rl.rlim_cur
}

/// Sizes the pools for a process allowed `nofile` descriptors: the configured sizes when they
/// fit, else each scaled down in proportion (at least 1).
pub fn pools(config: &Config, nofile: u64) -> Pools {
    let l = &config.limits;
    // Each delivery holds a connection, and idle pooled ones wait for reuse.
    let outbound = 2 * config.outbound.max_deliveries as u64;
    let reserved = BASE_RESERVE + outbound;
    let left = nofile.saturating_sub(reserved).max(3);
    let wanted = [l.max_connections, l.max_submission_connections, l.max_http_connections];
    let total: u64 = wanted.iter().map(|&n| n as u64).sum();
    let fit = |n: usize| -> usize { if total <= left { n } else { ((n as u64 * left) / total).max(1) as usize } };
    Pools { smtp: fit(wanted[0]), submission: fit(wanted[1]), http: fit(wanted[2]), nofile, reserved }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_fit_the_budget() {
        let Ok(config) = Config::from_toml("") else { panic!("the default config loads") };
        let roomy = pools(&config, 1_048_576);
        assert_eq!((roomy.smtp, roomy.submission, roomy.http), (1000, 200, 500));
        // 128 + 2 × 200 reserved out of 1,024: 496 left for 1,700 wanted.
        let tight = pools(&config, 1024);
        assert_eq!(tight.reserved, 528);
        assert!(tight.smtp + tight.submission + tight.http <= 496);
        assert!(tight.smtp > tight.http && tight.http > tight.submission && tight.submission >= 1);
    }

    #[test]
    fn raising_never_lowers() {
        let before = raise_nofile();
        assert!(raise_nofile() >= before);
    }
}
