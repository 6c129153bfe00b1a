//! Wiring only: open the store, bind the listeners, spawn the tasks, shut down gracefully.
//!
//! Tasks: one accept loop per listener, one task per SMTP session, one scheduler, and the
//! store's writer thread. On shutdown new clients get 421 4.3.2, idle sessions are closed
//! with 421, sessions inside a transaction may finish it (up to `limits.shutdown_grace`).
//! Must not: contain protocol or policy logic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::bounce::report::Reporter;
use crate::bounce::return_path::Signer;
use crate::config::Config;
use crate::inbound::{self, Context, ListenerKind, auth::Authenticator};
use crate::outbound::Outbound;
use crate::outbound::slots::Slots;
use crate::queue::scheduler::Scheduler;
use crate::store::Store;

pub struct Listeners {
    pub smtp: Option<TcpListener>,
    pub submission: Option<TcpListener>,
    pub http: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(config: &Config) -> Result<Listeners> {
        async fn one(addr: Option<SocketAddr>, key: &str) -> Result<Option<TcpListener>> {
            match addr {
                None => Ok(None),
                Some(a) => Ok(Some(TcpListener::bind(a).await.with_context(|| format!("binding {key} = {a}"))?)),
            }
        }
        Ok(Listeners {
            smtp: one(config.listen.smtp, "listen.smtp").await?,
            submission: one(config.listen.submission, "listen.submission").await?,
            http: one(config.listen.http, "listen.http").await?,
        })
    }
}

/// A daemon running inside this process (used by `serve` and by the integration tests).
pub struct Handle {
    pub smtp: Option<SocketAddr>,
    pub submission: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<()>>,
}

impl Handle {
    /// Starts graceful shutdown and waits for it to finish.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("daemon task")?
    }

    /// Waits until the daemon stops by itself (it does not, unless it fails).
    pub async fn wait(self) -> Result<()> {
        self.task.await.context("daemon task")?
    }

    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// Takes the data dir's lock, binds the listeners of `config` and runs the daemon in a task
/// (which holds the lock until it ends).
pub async fn start(config: Config) -> Result<Handle> {
    start_with_clock(config, crate::time::Clock::system()).await
}

/// `start`, with the clock the daily tasks and the compromised-account detector read (a
/// test's manual clock: hours pass, and midnight comes, without sleeping).
pub async fn start_with_clock(config: Config, clock: crate::time::Clock) -> Result<Handle> {
    // Before anything else: a second daemon on this data dir must touch nothing.
    let lock = crate::instance::lock(&config.data_dir)?;
    let listeners = Listeners::bind(&config).await?;
    let smtp = listeners.smtp.as_ref().and_then(|l| l.local_addr().ok());
    let submission = listeners.submission.as_ref().and_then(|l| l.local_addr().ok());
    let http = listeners.http.as_ref().and_then(|l| l.local_addr().ok());
    let (stop, stopped) = watch::channel(false);
    let mut ready = prepare(config).await?;
    ready.clock = clock;
    let task = tokio::spawn(async move {
        let _lock = lock;
        run(ready, listeners, stopped).await
    });
    Ok(Handle { smtp, submission, http, stop, task })
}

/// Flushes the compromised-account detector's counts to the store once a minute, and once
/// more at shutdown.
async fn flush_suspect(detector: Arc<crate::suspect::Detector>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => detector.flush().await,
            _ = shutdown.changed() => {
                detector.flush().await;
                return;
            }
        }
    }
}

/// What `run` needs, built before the daemon task so that start-up errors surface at once.
pub struct Prepared {
    config: Config,
    store: Arc<dyn Store>,
    tls: tokio_rustls::TlsAcceptor,
    signer: Arc<Signer>,
    dkim: Option<Arc<crate::dkim::Signer>>,
    /// The time the daily tasks (TLS reports), TLS report counts and the compromised-account
    /// detector read (tests pass a manual clock).
    clock: crate::time::Clock,
}

/// The signer of return paths. A node on its own store: the key in `data_dir/return-path.key`,
/// created (mode 0600) on first start. A node of a cluster (a shared store): the cluster's key in
/// the store, which the first node to start put there (its key file's, when it had one), so a
/// bounce reaching any node verifies against mail any node sent; a differing key file of the
/// node's own is reported, and still verifies what it signed. `read_only` (the CLI) never
/// creates a key anywhere: with none stored yet, it verifies with the node's file or nothing.
pub async fn return_path_signer(
    config: &Config,
    cluster: Option<&dyn crate::store::ClusterStore>,
    read_only: bool,
) -> Result<Signer> {
    let path = config.data_dir.join("return-path.key");
    let signer = |secret, previous| Signer { secret, domain: config.bounce.return_path_domain.clone(), previous };
    let own = read_key(&path)?;
    let Some(cluster) = cluster else {
        return Ok(match own {
            Some(key) => signer(key, Vec::new()),
            None if read_only => signer(random_key()?, Vec::new()),
            None => signer(create_key(&path)?, Vec::new()),
        });
    };
    let candidate = match (&own, read_only) {
        (_, true) => None,
        (Some(key), false) => Some(key.clone()),
        (None, false) => Some(random_key()?),
    };
    let shared = cluster
        .cluster_secret("return-path", candidate.as_deref())
        .await
        .context("reading the cluster's return-path key")?;
    Ok(match (shared, own) {
        (Some(shared), Some(own)) if own != shared => {
            tracing::warn!(
                "{} differs from the cluster's return-path key: the cluster's signs, this file's \
                 still verifies what it signed",
                path.display()
            );
            signer(shared, vec![own])
        }
        (Some(shared), _) => signer(shared, Vec::new()),
        (None, Some(own)) => signer(own, Vec::new()),
        // Only when reading: nothing stored yet, so nothing of the cluster's can verify.
        (None, None) => signer(random_key()?, Vec::new()),
    })
}

fn read_key(path: &std::path::Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = text.trim().as_bytes().to_vec();
            anyhow::ensure!(key.len() >= 32, "{} is too short to be a key", path.display());
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// 32 random bytes as 64 hex digits (the key is used as the text it is stored as).
fn random_key() -> Result<Vec<u8>> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness for the return-path key: {e}"))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes())
}

fn create_key(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = random_key()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(&key)?;
    f.sync_all()?;
    Ok(key)
}

/// The store for error messages: the SQLite path, or PostgreSQL's host and database (never
/// the URL, which may hold a password).
pub fn store_name(config: &Config) -> String {
    if crate::store::is_postgres_url(&config.store_url) {
        match config.store_url.parse::<tokio_postgres::Config>() {
            Ok(c) => {
                let hosts: Vec<String> = c
                    .get_hosts()
                    .iter()
                    .map(|h| match h {
                        tokio_postgres::config::Host::Tcp(name) => name.clone(),
                        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                    })
                    .collect();
                format!("PostgreSQL database `{}` on {}", c.get_dbname().unwrap_or_default(), hosts.join(","))
            }
            Err(_) => "PostgreSQL (store.url does not parse)".into(),
        }
    } else {
        config.sqlite_path().display().to_string()
    }
}

pub async fn prepare(config: Config) -> Result<Prepared> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| anyhow::anyhow!(crate::instance::data_dir_problem(&config.data_dir, &e)))?;
    let store = crate::store::open(&config).await.with_context(|| format!("opening store {}", store_name(&config)))?;
    let tls = inbound::tls::acceptor(&config).context("setting up TLS")?;
    let signer = Arc::new(return_path_signer(&config, store.clone().cluster().as_deref(), false).await?);
    let dkim = match &config.dkim {
        Some(d) => Some(Arc::new(crate::dkim::Signer::load(&d.domain, &d.selector, &d.key)?)),
        None => None,
    };
    Ok(Prepared { config, store, tls, signer, dkim, clock: crate::time::Clock::system() })
}

/// The context of a session for a local program (`sendmail`), in the program's own process: the
/// store of the configured data dir (SQLite lets a second process write; PostgreSQL is shared
/// anyway), the return-path key read-only, DKIM when its key is readable (else the mail goes
/// unsigned, with a warning), no TLS, and a scheduler wakeup of its own that nobody listens to
/// (the caller wakes the daemon with `control::wake`). Sessions run while the returned sender
/// lives (dropping it reads as shutdown).
pub async fn local_context(config: Config) -> Result<(Arc<Context>, watch::Sender<bool>)> {
    let store = crate::store::open(&config).await.with_context(|| format!("opening store {}", store_name(&config)))?;
    let signer = Arc::new(return_path_signer(&config, store.clone().cluster().as_deref(), true).await?);
    let dkim = match &config.dkim {
        Some(d) => match crate::dkim::Signer::load(&d.domain, &d.selector, &d.key) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                warn!(key = %d.key.display(), error = %e, "DKIM key not readable here: mail from this program is not signed");
                None
            }
        },
        None => None,
    };
    let limits = config.limits.clone();
    let (stop, shutdown) = watch::channel(false);
    let (suspect, store_for_suspect) = (config.suspect, store.clone());
    let ctx = Arc::new(Context {
        auth: Authenticator::new(
            store.clone(),
            config.login.clone(),
            limits.auth_max_failures,
            limits.auth_failure_window,
        )
        .with_backend(&config.auth),
        breaker: Arc::new(crate::bounce::breaker::Breaker::new(config.account)),
        config,
        store,
        tls: None,
        shutdown,
        queue_wakeup: Arc::new(crate::accept::Wakeup::default()),
        unsubscribe: Arc::new(crate::bounce::unsubscribe::Keys::derive(&signer.secret, &signer.previous)),
        return_path: signer,
        dkim,
        dns: None,
        anvil: inbound::anvil::Anvil::new(inbound::anvil::Limits {
            sessions: 0,
            connections_per_minute: 0,
            messages_per_minute: 0,
            recipients_per_minute: 0,
        }),
        // A one-shot local program keeps no counts: the running daemon watches the accounts.
        suspect: Arc::new(crate::suspect::Detector::new(
            crate::config::SuspectConfig { burst_factor: 0.0, new_network: false, new_from_domain: false, ..suspect },
            store_for_suspect,
            crate::time::Clock::system(),
        )),
    });
    Ok((ctx, stop))
}

pub async fn run(prepared: Prepared, listeners: Listeners, mut stop: watch::Receiver<bool>) -> Result<()> {
    let Prepared { config, store, tls, signer, dkim, clock } = prepared;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let wakeup = Arc::new(crate::accept::Wakeup::default());
    let started = (Instant::now(), crate::time::Timestamp::now());
    let addresses = [("smtp", &listeners.smtp), ("submission", &listeners.submission), ("http", &listeners.http)].map(
        |(name, l)| crate::control::Listener {
            name: name.to_string(),
            address: l.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string()),
        },
    );
    let limits = config.limits.clone();
    let nofile = crate::budget::raise_nofile();
    let pools = crate::budget::pools(&config, nofile);
    info!(
        nofile,
        reserved = pools.reserved,
        smtp = pools.smtp,
        submission = pools.submission,
        http = pools.http,
        "descriptor budget"
    );
    if pools.smtp < limits.max_connections
        || pools.submission < limits.max_submission_connections
        || pools.http < limits.max_http_connections
    {
        warn!(
            nofile,
            "the descriptor limit is too low for the configured connection limits: the pools were scaled down (raise `ulimit -n`)"
        );
    }
    let auth =
        Authenticator::new(store.clone(), config.login.clone(), limits.auth_max_failures, limits.auth_failure_window)
            .with_backend(&config.auth);
    let breaker = Arc::new(crate::bounce::breaker::Breaker::new(config.account));
    let suspect = Arc::new(crate::suspect::Detector::new(config.suspect, store.clone(), clock.clone()));
    tokio::spawn(flush_suspect(suspect.clone(), shutdown_rx.clone()));
    let ctx = Arc::new(Context {
        config: config.clone(),
        store: store.clone(),
        tls: Some(tls),
        auth,
        shutdown: shutdown_rx.clone(),
        queue_wakeup: wakeup.clone(),
        return_path: signer.clone(),
        unsubscribe: Arc::new(crate::bounce::unsubscribe::Keys::derive(&signer.secret, &signer.previous)),
        dkim: dkim.clone(),
        dns: crate::dns::Dns::new(&config.dns_nameservers).ok().map(Arc::new),
        breaker: breaker.clone(),
        anvil: inbound::anvil::Anvil::new(inbound::anvil::Limits {
            sessions: limits.max_connections_per_ip,
            connections_per_minute: limits.connection_rate_per_ip,
            messages_per_minute: limits.messages_per_ip,
            recipients_per_minute: limits.recipients_per_ip,
        }),
        suspect,
    });
    if let Some(l) = listeners.http {
        info!(listener = "http", addr = %l.local_addr()?, "listening");
        let verifier = crate::feedback::evidence::Verifier::new(
            &config,
            Some((*signer).clone()),
            config.bounce.check_authentication,
        );
        let state = Arc::new(crate::http::AppState {
            ctx: ctx.clone(),
            verifier,
            sessions: Default::default(),
            idempotency: Default::default(),
        });
        tokio::spawn(crate::http::serve(l, state, pools.http, shutdown_rx.clone()));
    }
    for hook in config.webhooks.clone() {
        info!(url = %hook.url, "webhook endpoint");
        let transport = crate::http::webhooks::Transport::of(&hook, config.tls.ca_file.as_deref())
            .map_err(|e| anyhow::anyhow!("webhook {}: {e}", hook.url))?;
        tokio::spawn(crate::http::webhooks::run(store.clone(), hook, transport, shutdown_rx.clone()));
    }
    // Each SMTP listener has its own pool of session slots: MX clients cannot starve submission.
    let pools = [
        (listeners.smtp, ListenerKind::Smtp, pools.smtp),
        (listeners.submission, ListenerKind::Submission, pools.submission),
    ];
    let mut slots = Vec::new();
    let mut tasks = Vec::new();
    for (listener, kind, size) in pools {
        if let Some(l) = listener {
            info!(listener = kind.as_str(), addr = %l.local_addr()?, slots = size, "listening");
            let pool = Arc::new(Semaphore::new(size));
            slots.push((pool.clone(), size));
            tasks.push(tokio::spawn(inbound::listener::run(ctx.clone(), l, kind, pool)));
        }
    }
    let scheduler = if config.queue.hold {
        info!("queue.hold is set: messages are stored but not delivered");
        None
    } else {
        let config = Arc::new(config.clone());
        // Unique per process, also for nodes that share a host name or a pid (containers).
        let mut tag = [0u8; 4];
        getrandom::fill(&mut tag).map_err(|e| anyhow::anyhow!("random: {e}"))?;
        let owner = format!("{}:{}:{:08x}", config.hostname, std::process::id(), u32::from_le_bytes(tag));
        let mut outbound = Outbound::new(config.clone())
            .map_err(|e| anyhow::anyhow!("outbound: {e}"))?
            .with_policies(store.clone())
            .with_clock(clock.clone());
        if config.outbound.tls_rpt {
            let reporter = crate::outbound::tlsrpt::Reporter {
                store: store.clone(),
                config: config.clone(),
                dns: crate::dns::Dns::new(&config.dns_nameservers).map_err(|e| anyhow::anyhow!("dns: {e}"))?,
                trust: outbound.trust(),
                wakeup: wakeup.clone(),
                dkim: dkim.clone(),
                clock: clock.clone(),
            };
            info!("TLS reports (RFC 8460) are sent daily");
            tokio::spawn(reporter.run(shutdown_rx.clone()));
        }
        if let Some(cluster) = store.clone().cluster() {
            outbound = outbound.with_slots(Slots::new(cluster, owner.clone(), config.queue.lease));
        }
        let outbound = Arc::new(outbound);
        let reporter = Reporter { store: store.clone(), config: config.clone(), wakeup: wakeup.clone(), dkim };
        let s = Arc::new(Scheduler {
            store: store.clone(),
            config: config.clone(),
            wakeup,
            outbound,
            reporter,
            verifier: Arc::new(crate::feedback::evidence::Verifier::new(
                &config,
                Some((*signer).clone()),
                config.bounce.check_authentication,
            )),
            breaker,
            unsubscribe: ctx.unsubscribe.clone(),
            return_path: signer.clone(),
            signer: config.bounce.sign_return_path.then_some(signer),
            owner,
            inflight: Default::default(),
            lmtp: match &config.local.transport {
                crate::config::LocalTransport::Lmtp(target) => Some(crate::local::lmtp::Lmtp::new(
                    target.clone(),
                    config.hostname.clone(),
                    crate::outbound::client::Timeouts {
                        connect: config.outbound.connect_timeout,
                        command: config.outbound.command_timeout,
                        ..Default::default()
                    },
                    config.outbound.idle_timeout,
                )),
                crate::config::LocalTransport::Maildir => None,
            },
        });
        Some(tokio::spawn(s.run(shutdown_rx.clone())))
    };
    match crate::control::bind(&config.data_dir) {
        Ok(socket) => {
            let daemon = Arc::new(crate::control::Daemon {
                store: store.clone(),
                wakeup: ctx.queue_wakeup.clone(),
                hostname: config.hostname.clone(),
                data_dir: config.data_dir.clone(),
                store_name: store_name(&config),
                listeners: addresses.to_vec(),
                queue_hold: config.queue.hold,
                started: started.0,
                started_at: started.1,
            });
            tokio::spawn(crate::control::serve(socket, daemon, shutdown_rx.clone()));
        }
        Err(e) => warn!(
            socket = %crate::control::socket_path(&config.data_dir).display(),
            error = %e,
            "no control socket: `mailerd status` cannot reach this daemon"
        ),
    }
    info!(hostname = %config.hostname, data_dir = %config.data_dir.display(), "mailerd started");

    let _ = stop.wait_for(|s| *s).await;
    info!("shutting down: refusing new sessions, finishing transactions");
    let _ = shutdown_tx.send(true);
    let started = Instant::now();
    let busy = |slots: &[(Arc<Semaphore>, usize)]| slots.iter().any(|(s, n)| s.available_permits() < *n);
    while busy(&slots) && started.elapsed() < limits.shutdown_grace {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for t in tasks {
        t.abort();
    }
    if let Some(s) = scheduler {
        let _ = s.await;
    }
    info!("mailerd stopped");
    Ok(())
}
