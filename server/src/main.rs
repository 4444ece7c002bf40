//! `ironseal`: a certificate authority server. `ironseal serve` runs ACME
//! (RFC 8555 + ARI, RFC 9773) over HTTPS and CA certificates, CRLs and
//! metrics over plain HTTP; `ironseal admin` calls the admin API. The
//! server itself is the `ironseal` library (`src/lib.rs`); this file only
//! parses the command line and starts it.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio::sync::watch;

use ironseal::config::{Config, LogFormat, ServeArgs};
use ironseal::listener_cert::ListenerCert;
use ironseal::state::AppState;
use ironseal::{acme, admin, bootstrap, cli, crl, http, metrics, ocsp, pki_http, validation};

#[derive(Parser)]
#[command(
    name = "ironseal",
    version,
    about = "ironseal certificate authority server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (creates the CA on first start).
    Serve(ServeArgs),
    /// Call the admin API of a running server over HTTPS.
    Admin(cli::AdminArgs),
    /// Write a consistent backup of a running server's store, on the
    /// server, into its backup directory (admin API key needed).
    Backup(cli::ConnArgs),
    /// Restore a backup into a new data directory (server stopped).
    Restore(ironseal::restore::RestoreArgs),
    /// Export a store to a file, or import one into an empty store (moves
    /// a deployment between sled and PostgreSQL; server stopped).
    Store(ironseal::store_transfer::StoreArgs),
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IRONSEAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Human => b.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Admin(args) => cli::run(args),
        Command::Backup(conn) => cli::run_backup(conn),
        Command::Restore(args) => ironseal::restore::run(args),
        Command::Store(args) => ironseal::store_transfer::run(args),
        Command::Serve(args) => {
            let config = match Config::resolve(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("ironseal: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(config.log_format);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("ironseal: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "ironseal stopped");
                    eprintln!("ironseal: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    for knob in config.test_knobs() {
        tracing::warn!("TEST OPTION ACTIVE: {knob}; never use this in production");
    }
    if !config.test_knobs().is_empty() {
        tracing::warn!(
            "TEST OPTION ACTIVE: challenge validation may connect to loopback addresses (implied by the test options above)"
        );
    }
    bootstrap::prepare_data_dir(&config.data_dir)?;
    let kek = bootstrap::load_kek(&config)?;
    let store = bootstrap::open_store(&config).await?;
    // Before anything is appended: every entry from here on carries a MAC.
    let audit_keys = Arc::new(ironseal::audit_keys::ensure(&store, &kek).await?);
    // Read before loading anything: a change another replica makes from
    // here on is refreshed at the first poll (see `propagate`).
    let generations = ironseal::propagate::initial(store.as_ref()).await;
    // First-start work, one process at a time (on PostgreSQL a session
    // advisory lock): replicas started together on an empty database make
    // one hierarchy and one admin key; the others load them.
    let bootstrap_lock = store.bootstrap_lock().await?;
    bootstrap::import_issuing_file(&config, store.as_ref()).await?;
    if bootstrap::ensure_hierarchy(&config, &store, &kek).await? {
        tracing::info!(data_dir = %config.data_dir.display(), "first start: CA created");
    }
    let cas = bootstrap::load_cas(&config, store.as_ref(), &kek, true).await?;
    // root.pem comes from the store's records, so every replica's is the same.
    bootstrap::write_root(&config, &cas)?;
    let initial_key = bootstrap::ensure_admin_key(&config, &store).await?;
    drop(bootstrap_lock);
    if let Some(key) = initial_key {
        if std::env::var("IRONSEAL_INITIAL_ADMIN_KEY").is_err() {
            // Only its hash is kept in the store. The key goes to a 0600
            // file, and to the terminal only when stderr is one: never into
            // the log stream.
            let path = bootstrap::write_initial_key(&config, &key)?;
            tracing::warn!(
                path = %path.display(),
                "initial admin API key written to this file (mode 0600): store it, then delete the file"
            );
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprintln!(
                    "ironseal: initial admin API key (also in {}): {key}",
                    path.display()
                );
            }
        }
    }
    let client_certs = bootstrap::client_cert_auth(&config, store.as_ref()).await?;
    if let (Some(ca), Some(auth)) = (&config.admin_client_ca, &client_certs) {
        let rules: Vec<String> = auth.rules().iter().map(ToString::to_string).collect();
        tracing::info!(
            client_ca = %ca.display(),
            rules = %rules.join(", "),
            "admin client-certificate authentication enabled; the HTTPS listener requests (does not require) client certificates"
        );
    }
    let listener_cert = Arc::new(ListenerCert::issue(&config, &store, &cas).await?);
    let tls = Arc::new(bootstrap::tls_config(
        listener_cert.clone(),
        client_certs.as_deref(),
        config.est.enabled(),
    ));
    // PostgreSQL: EST Basic lockouts hold on every replica.
    let est_shared = match config.storage {
        ironseal::config::StorageBackend::Postgres { .. } => Some(store.clone()),
        ironseal::config::StorageBackend::Sled => None,
    };
    let est = Arc::new(ironseal::est::Est::new(&config.est, est_shared)?);
    let validator = validation::Validator::new(validation::ValidationConfig {
        http01_port: config.http01_port,
        tlsalpn01_port: config.tlsalpn01_port,
        dns_resolver: config.dns_resolver,
        timeout: Duration::from_secs(10),
        address_policy: config.validation_address_policy(),
        max_concurrent: config.validation_max_concurrent,
        hosts: config.validation_hosts.as_ref().map(|(_, h)| h.clone()),
    })?;
    if let Some((path, hosts)) = &config.validation_hosts {
        tracing::warn!(
            file = %path.display(),
            names = hosts.len(),
            "challenge validation resolves the names in this hosts file before DNS, and may connect to their addresses"
        );
    }
    tracing::info!(validation = ?validator.config(), "challenge validation settings");
    let https = TcpListener::bind(config.listen).await?;
    let plain = TcpListener::bind(config.http_listen).await?;
    // `[metrics] listen`: /metrics (and /health) on their own address.
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let limits = http::Limits {
        header_read_timeout: config.header_read_timeout,
        request_timeout: config.request_timeout,
        idle_timeout: config.idle_timeout,
        connections: http::connections::ConnectionCaps {
            total: config.max_connections,
            per_ip: config.max_connections_per_ip,
        },
        max_body_requests: config.max_body_requests,
    };
    let state = Arc::new(
        AppState::new(
            config,
            store,
            validator,
            cas,
            kek,
            client_certs,
            listener_cert,
            audit_keys,
        )
        .await?,
    );
    if let Some(g) = generations {
        state.set_seen_generations(g);
    }
    if let Err(e) = ocsp::ensure_responders(&state).await {
        tracing::warn!(error = %e, "OCSP responder setup incomplete");
    }
    let now = time::OffsetDateTime::now_utc();
    if let Err(e) = ironseal::scep::ra::ensure(&state, now).await {
        tracing::warn!(error = %e, "SCEP RA setup failed; SCEP answers 503 until it succeeds");
    }
    let root_path = state.config.data_dir.join("root.pem");
    tracing::info!(
        directory = %format!("{}/directory", state.base_url_for(None)),
        http = %state.config.http_public_url,
        root = %root_path.display(),
        replica_id = state.replica_id(),
        "ironseal ready"
    );

    let (tx, rx) = watch::channel(false);
    let st = state.clone();
    let est = est.clone();
    let acme_handler = move |req: hyper::Request<hyper::body::Incoming>| {
        let st = st.clone();
        let est = est.clone();
        async move {
            let started = std::time::Instant::now();
            let protocol = metrics::HttpProtocol::of_https_path(req.uri().path());
            let resp = if protocol == metrics::HttpProtocol::Admin {
                admin::handle(&st, req).await
            } else if req.uri().path().starts_with(ironseal::est::PATH_PREFIX) {
                ironseal::est::handle(&st, &est, req).await
            } else {
                acme::handle(&st, req).await
            };
            st.metrics.observe_http(protocol, started.elapsed());
            resp
        }
    };
    let st = state.clone();
    let plain_handler = move |req: hyper::Request<hyper::body::Incoming>| {
        let st = st.clone();
        async move {
            let started = std::time::Instant::now();
            let protocol = metrics::HttpProtocol::of_plain_path(req.uri().path());
            let resp = pki_http::handle(&st, req).await;
            st.metrics.observe_http(protocol, started.elapsed());
            resp
        }
    };
    let a = tokio::spawn(http::serve(
        https,
        Some(tls),
        limits,
        acme_handler,
        rx.clone(),
    ));
    let b = tokio::spawn(http::serve(plain, None, limits, plain_handler, rx.clone()));
    let m = metrics_listener.map(|listener| {
        let st = state.clone();
        let handler = move |req: hyper::Request<hyper::body::Incoming>| {
            let st = st.clone();
            async move { pki_http::handle_metrics_listener(&st, req).await }
        };
        tokio::spawn(http::serve(listener, None, limits, handler, rx.clone()))
    });
    let st = state.clone();
    let mut housekeeping_rx = rx.clone();
    let housekeeping = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    ticks += 1;
                    // Forgets idle rate-limit buckets (a database delete on PostgreSQL).
                    st.prune_rate_limits().await;
                    // Deletes expired orders and authorizations (hourly by default).
                    if acme::purge::due(&st, ticks) {
                        if let Err(e) = acme::purge::run(&st, time::OffsetDateTime::now_utc()).await {
                            tracing::warn!(error = %e, "purge of expired orders and authorizations failed");
                        }
                        if let Err(e) = ironseal::scep::purge::run(&st, time::OffsetDateTime::now_utc()).await {
                            tracing::warn!(error = %e, "purge of finished SCEP transactions failed");
                        }
                    }
                    // Renews delegated OCSP responder certificates off the
                    // request path (key generation on a blocking thread).
                    if let Err(e) = ocsp::ensure_responders(&st).await {
                        tracing::warn!(error = %e, "OCSP responder renewal failed");
                    }
                    // Forgets leases expired for an hour (finished orders, validations).
                    let hour = 3_600_000_000_000i64;
                    if let Err(e) = st.store.purge_leases(ironseal::leases::now_ns().saturating_sub(hour)).await {
                        tracing::warn!(error = %e, "purge of expired leases failed");
                    }
                    // Renews the HTTPS listener's certificate when it is due.
                    if let Err(e) = st.refresh_listener_cert().await {
                        tracing::warn!(error = %e, "HTTPS listener certificate renewal failed");
                    }
                    // Issues or renews the SCEP RA certificate when it is due.
                    if let Err(e) = ironseal::scep::ra::ensure(&st, time::OffsetDateTime::now_utc()).await {
                        tracing::warn!(error = %e, "SCEP RA certificate renewal failed");
                    }
                }
                _ = housekeeping_rx.changed() => break,
            }
        }
    });

    // PostgreSQL: changes through other replicas (see `propagate`).
    let poller = match state.config.storage {
        ironseal::config::StorageBackend::Postgres { .. } => {
            tracing::info!(
                every_ms = state.config.change_poll.as_millis() as u64,
                "polling the store's change generations"
            );
            Some(tokio::spawn(ironseal::propagate::run(
                state.clone(),
                rx.clone(),
            )))
        }
        ironseal::config::StorageBackend::Sled => None,
    };

    // The CRL builder's lease and rebuilds (crl::tick), and the OCSP
    // responders', every third of the lease TTL (at most 1 s).
    let st = state.clone();
    let mut lease_rx = rx.clone();
    let lease_ticks = tokio::spawn(async move {
        let mut tick = tokio::time::interval(crl::tick_interval(&st.config));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    crl::tick(&st).await;
                }
                _ = lease_rx.changed() => break,
            }
        }
    });

    // Signed checkpoints of the audit head, when it moved (`[audit]`).
    let st = state.clone();
    let mut checkpoint_rx = rx.clone();
    let checkpoints = tokio::spawn(async move {
        let Some(every) = st.config.audit_checkpoint_interval else {
            return;
        };
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = st
                        .audit_keys
                        .checkpoint(
                            st.store.as_ref(),
                            st.config.audit_checkpoint_file.as_deref(),
                            true,
                        )
                        .await
                    {
                        tracing::warn!(error = %e, "audit checkpoint failed");
                    }
                }
                _ = checkpoint_rx.changed() => break,
            }
        }
    });

    shutdown_signal().await;
    tracing::info!("shutting down: draining connections");
    let _ = tx.send(true);
    let _ = tokio::join!(a, b, housekeeping, checkpoints, lease_ticks);
    if let Some(p) = poller {
        let _ = p.await;
    }
    if let Some(m) = m {
        let _ = m.await;
    }
    // Hand the per-CA leases over at once instead of after their TTL.
    for id in state.ca_set().by_id.keys() {
        let _ = state.leases.release(&ironseal::leases::crl_lease(id)).await;
        let _ = state
            .leases
            .release(&ironseal::leases::ocsp_responder_lease(id))
            .await;
    }
    ironseal::durability::flush(&state.store).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
