//! SCEP enrolment benchmark driver. A command, not a test:
//! `scripts/bench-scep.sh` starts ironseal and micromdm's `scepserver` and
//! runs it against each; `docs/benchmarks.md` ("SCEP enrolment") defines
//! the figures.
//!
//! Before the timer starts it fetches GetCACert, picks the RA (the
//! certificate that is not a CA, or the only one), and makes `--count`
//! complete PKCSReq messages (RFC 8894 §3.3.1): per enrolment a fresh
//! RSA-2048 key, its transient self-signed signer certificate, a CSR with
//! the challenge, the envelope to the RA and the signature, each with a
//! random transactionID. Then `--clients` tasks POST them on kept-alive
//! HTTP/1.1 connections, one at a time, and check that each answer is a
//! CertRep signed by the RA with pkiStatus SUCCESS and an envelope. It
//! prints enrolments/s, latency percentiles and, with `--server-pid`, the
//! server's CPU time per enrolment (utime + stime from `/proc/<pid>/stat`
//! before and after), then one machine-readable `RESULT` line.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use bytes::Bytes;
use clap::Parser;
use der::{Decode, Encode};
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request as HttpRequest, StatusCode};
use hyper_util::rt::TokioIo;
use ironseal_conformance::bench::{cpu_seconds, CpuSpan, Tally};
use ironseal_protocol::pkcs7::certificates_of;
use ironseal_protocol::scep::{CertRepView, ContentCipher, DigestAlg, MessageType, RaKey, Request};
use tokio::net::TcpStream;
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::Certificate;

#[derive(Parser, Debug)]
#[command(
    name = "bench_scep",
    about = "SCEP enrolment benchmark driver (see docs/benchmarks.md)"
)]
struct Cli {
    /// SCEP URL (plain HTTP, loopback), e.g. http://127.0.0.1:14080/scep/bench
    #[arg(long)]
    url: String,
    /// Challenge password put in every CSR
    #[arg(long, default_value = "")]
    challenge: String,
    /// Content cipher of the requests: aes or des
    #[arg(long, default_value = "aes")]
    cipher: String,
    /// Concurrent clients, one kept-alive connection each
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Enrolments (one fresh RSA-2048 key and CSR each)
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Stop sending after this many seconds
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// Server process whose CPU time is measured
    #[arg(long)]
    server_pid: Option<u32>,
    /// Label for the RESULT line
    #[arg(long, default_value = "scep")]
    name: String,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `http://host:port/path` → ("host:port", "/path").
fn split_url(url: &str) -> Result<(String, String), Error> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    Ok(match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    })
}

/// The RA certificate of a GetCACert answer: the one certificate that is
/// not a CA, else (micromdm: CA and RA in one) the only certificate.
fn ra_of(answer: &[u8]) -> Result<Certificate, Error> {
    let ders = match certificates_of(answer) {
        Ok(d) => d,
        Err(_) => vec![answer.to_vec()],
    };
    let certs: Vec<Certificate> = ders
        .iter()
        .map(|d| Certificate::from_der(d))
        .collect::<Result<_, _>>()?;
    let is_ca = |c: &Certificate| matches!(c.tbs_certificate().get_extension::<BasicConstraints>(), Ok(Some((_, bc))) if bc.ca);
    match certs.iter().find(|c| !is_ca(c)) {
        Some(c) => Ok(c.clone()),
        None if certs.len() == 1 => Ok(certs[0].clone()),
        None => Err("no RA certificate in the GetCACert answer".into()),
    }
}

/// One complete PKCSReq: a fresh RSA-2048 key, its self-signed signer
/// certificate and a CSR carrying `challenge`.
fn pkcs_req(
    i: usize,
    ra: &Certificate,
    challenge: &str,
    cipher: ContentCipher,
) -> Result<Vec<u8>, Error> {
    let key = KeyPair::generate(KeySize::Rsa2048)?;
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)?
        .as_ref()
        .to_vec();
    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
        &rcgen::PKCS_RSA_SHA256,
    )?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("bench-scep-{i}"));
    let self_signed = params.self_signed(&signer)?;
    let mut values = der::asn1::SetOfVec::new();
    values.insert(der::Any::encode_from(&der::asn1::Utf8StringRef::new(
        challenge,
    )?)?)?;
    let csr = params.serialize_request_with_attributes(
        &signer,
        vec![rcgen::Attribute {
            oid: &[1, 2, 840, 113549, 1, 9, 7],
            values: values.to_der()?,
        }],
    )?;
    let client = RaKey::new(self_signed.der(), &pkcs8)?;
    let mut tx = [0u8; 16];
    aws_lc_rs::rand::fill(&mut tx)?;
    let tx: String = tx.iter().map(|b| format!("{b:02X}")).collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let (msg, _) = Request {
        message_type: MessageType::PkcsReq,
        transaction_id: &tx,
        content: csr.der(),
        recipient: ra,
        cipher,
        digest: DigestAlg::Sha256,
    }
    .encode(&client, now, &SystemRandom::new())?;
    Ok(msg)
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench_scep: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cli)) {
        eprintln!("bench_scep: {e}");
        std::process::exit(1);
    }
}

/// One request on `sender`; (status, body).
async fn post(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: &str,
    uri: &str,
    method: Method,
    body: Bytes,
) -> Result<(StatusCode, Bytes), Error> {
    let req = HttpRequest::builder()
        .method(method)
        .uri(uri)
        .header(HOST, authority)
        .header(CONTENT_TYPE, "application/x-pki-message")
        .body(Full::new(body))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

async fn connect(
    authority: &str,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, Error> {
    let stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn run(cli: Cli) -> Result<(), Error> {
    let (authority, path) = split_url(&cli.url)?;
    let cipher = match cli.cipher.as_str() {
        "aes" => ContentCipher::Aes128,
        "des" => ContentCipher::Des,
        other => return Err(format!("unknown cipher {other}").into()),
    };
    let mut s = connect(&authority).await?;
    let (status, answer) = post(
        &mut s,
        &authority,
        &format!("{path}?operation=GetCACert"),
        Method::GET,
        Bytes::new(),
    )
    .await?;
    if status != StatusCode::OK {
        return Err(format!("GetCACert: HTTP {status}").into());
    }
    let ra = Arc::new(ra_of(&answer)?);

    let made = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (ra, next, challenge, count) =
            (ra.clone(), next.clone(), cli.challenge.clone(), cli.count);
        handles.push(std::thread::spawn(move || {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, String>(out);
                }
                out.push(Bytes::from(
                    pkcs_req(i, &ra, &challenge, cipher).map_err(|e| e.to_string())?,
                ));
            }
        }));
    }
    let mut bodies = Vec::new();
    for h in handles {
        bodies.extend(h.join().map_err(|_| "a key thread panicked")??);
    }
    eprintln!(
        "bench_scep: {} RSA-2048 keys, signer certificates, CSRs and PKCSReqs made in {:.1} s (before the timer)",
        bodies.len(),
        made.elapsed().as_secs_f64()
    );
    let bodies = Arc::new(bodies);
    let mut senders = Vec::new();
    for _ in 0..cli.clients {
        senders.push(connect(&authority).await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = Duration::from_secs(cli.max_seconds);
    let uri = format!("{path}?operation=PKIOperation");
    let cpu0 = cli.server_pid.and_then(cpu_seconds);
    let own0 = cpu_seconds(std::process::id());
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for mut sender in senders {
        let (bodies, next, tally, authority, uri) = (
            bodies.clone(),
            next.clone(),
            tally.clone(),
            authority.clone(),
            uri.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= bodies.len() || t0.elapsed() > deadline {
                    break;
                }
                let sent = Instant::now();
                let answer = post(
                    &mut sender,
                    &authority,
                    &uri,
                    Method::POST,
                    bodies[i].clone(),
                )
                .await;
                let took = sent.elapsed();
                match answer {
                    Ok((StatusCode::OK, body)) => match CertRepView::decode(&body) {
                        Ok(v) if v.pki_status == "0" && v.envelope.is_some() => {
                            mine.ok += 1;
                            mine.latencies.push(took);
                        }
                        Ok(v) => {
                            mine.bad += 1;
                            mine.first_problem.get_or_insert_with(|| {
                                format!("pkiStatus {} failInfo {:?}", v.pki_status, v.fail_info)
                            });
                        }
                        Err(e) => {
                            mine.bad += 1;
                            mine.first_problem
                                .get_or_insert_with(|| format!("not a CertRep: {e}"));
                        }
                    },
                    Ok((status, body)) => {
                        mine.bad += 1;
                        mine.first_problem.get_or_insert_with(|| {
                            format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                        });
                    }
                    Err(e) => {
                        mine.errors += 1;
                        mine.first_problem.get_or_insert(e.to_string());
                        break;
                    }
                }
            }
            if let Ok(mut t) = tally.lock() {
                t.absorb(mine);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = t0.elapsed();
    let server = CpuSpan {
        before: cpu0,
        after: cli.server_pid.and_then(cpu_seconds),
    };
    let driver = CpuSpan {
        before: own0,
        after: cpu_seconds(std::process::id()),
    };
    let mut t = tally.lock().map_err(|_| "tally poisoned")?;
    Ok(t.report(&cli.name, cli.clients, elapsed, server, driver)?)
}
