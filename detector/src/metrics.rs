//! Watching the watcher: Prometheus metrics on `/metrics`, liveness on `/healthz`, readiness
//! on `/readyz`, served on the address of `detector run --metrics ADDR` (off by default; bind
//! it to loopback unless a scraper elsewhere needs it).
//!
//! The daemon counts on its hot path only with atomic adds (events, alerts); what other parts
//! already count (kernel losses, the sinks' deliveries, JVMs tracked, incidents) is copied in
//! once a second from the event loop's tick, which also proves the loop is turning: `/healthz`
//! answers 503 once no tick has come for [`STALL_AFTER`].

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, info::Info},
    registry::Registry,
};

use crate::session::SessionStats;

/// How long without an event-loop tick before `/healthz` says the daemon is stuck.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    rule: String,
    severity: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    commit: String,
    aya: String,
}

/// What the sinks have done, per sink: (name, sent, retried, failed, spooled, dropped,
/// deduplicated, evicted), as `sinks::SinkStats` counts them.
pub type SinkCounts<'a> = (&'a str, [u64; 7]);

/// The daemon's metrics and health.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    events: Family<KindLabels, Counter>,
    lost: Family<KindLabels, Counter>,
    alerts: Family<AlertLabels, Counter>,
    sinks: Family<SinkLabels, Counter>,
    jvms: Gauge,
    incidents: Gauge,
    reloads: Counter,
    reload_failures: Counter,
    decode_errors: Counter,
    ring_bytes: Gauge,
    ring_used: Gauge,
    ring_used_max: Gauge,
    ready: AtomicBool,
    /// ms since `started` of the last tick.
    last_tick_ms: AtomicU64,
    started: Instant,
}

/// The names of `SinkCounts`' columns, as the `outcome` label.
const SINK_OUTCOMES: [&str; 7] = [
    "sent",
    "retried",
    "failed",
    "spooled",
    "dropped",
    "deduplicated",
    "evicted",
];

impl Metrics {
    /// The metrics, registered under `detector_`, with the build's identity.
    pub fn new(version: &str, commit: &str, aya: &str) -> Metrics {
        let mut registry = Registry::with_prefix("detector");
        let events = Family::<KindLabels, Counter>::default();
        registry.register(
            "events",
            "Kernel events read from the ring buffer, by kind",
            events.clone(),
        );
        let lost = Family::<KindLabels, Counter>::default();
        registry.register(
            "kernel_lost_events",
            "Events the kernel could not hand over, by kind",
            lost.clone(),
        );
        let alerts = Family::<AlertLabels, Counter>::default();
        registry.register(
            "alerts",
            "Alerts raised, by rule, severity and action",
            alerts.clone(),
        );
        let sinks = Family::<SinkLabels, Counter>::default();
        registry.register(
            "sink_alerts",
            "Alerts per sink and outcome: sent, retried, failed, spooled, dropped, deduplicated, \
             evicted",
            sinks.clone(),
        );
        let jvms = Gauge::default();
        registry.register("jvms", "JVMs tracked (running)", jvms.clone());
        let incidents = Gauge::default();
        registry.register(
            "incidents_open",
            "Incidents open (JVMs with alerts that are still running)",
            incidents.clone(),
        );
        let reloads = Counter::default();
        registry.register(
            "policy_reloads",
            "Policies taken on SIGHUP",
            reloads.clone(),
        );
        let reload_failures = Counter::default();
        registry.register(
            "policy_reload_failures",
            "Policies refused on SIGHUP (the running one was kept)",
            reload_failures.clone(),
        );
        let decode_errors = Counter::default();
        registry.register(
            "decode_errors",
            "Kernel records that could not be decoded",
            decode_errors.clone(),
        );
        let ring_bytes = Gauge::default();
        registry.register(
            "ring_buffer_size_bytes",
            "Size of the kernel's event ring buffer",
            ring_bytes.clone(),
        );
        let ring_used = Gauge::default();
        registry.register(
            "ring_buffer_used_bytes",
            "Bytes waiting in the event ring buffer when the daemon last woke up to read it",
            ring_used.clone(),
        );
        let ring_used_max = Gauge::default();
        registry.register(
            "ring_buffer_used_max_bytes",
            "The most bytes the event ring buffer held when the daemon woke up, since start \
             (near the size: events are about to be lost)",
            ring_used_max.clone(),
        );
        registry.register(
            "build",
            "The running build",
            Info::new(BuildLabels {
                version: version.to_owned(),
                commit: commit.to_owned(),
                aya: aya.to_owned(),
            }),
        );
        Metrics {
            registry,
            events,
            lost,
            alerts,
            sinks,
            jvms,
            incidents,
            reloads,
            reload_failures,
            decode_errors,
            ring_bytes,
            ring_used,
            ring_used_max,
            ready: AtomicBool::new(false),
            last_tick_ms: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// One kernel event of `kind` was read.
    pub fn event(&self, kind: &str) {
        self.events
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// One alert was raised.
    pub fn alert(&self, rule: &str, severity: &str, action: &str) {
        self.alerts
            .get_or_create(&AlertLabels {
                rule: rule.to_owned(),
                severity: severity.to_owned(),
                action: action.to_owned(),
            })
            .inc();
    }

    /// A reload was taken (or refused).
    pub fn reloaded(&self, ok: bool) {
        if ok {
            self.reloads.inc();
        } else {
            self.reload_failures.inc();
        }
    }

    /// The event loop's once-a-second copy of what others count. Totals only grow, so they
    /// are stored as they are.
    pub fn tick(
        &self,
        lost: &[(&str, u64)],
        sinks: &[SinkCounts<'_>],
        jvms: usize,
        incidents: usize,
        session: &SessionStats,
    ) {
        for (kind, n) in lost {
            let counter = self.lost.get_or_create(&KindLabels {
                kind: (*kind).to_owned(),
            });
            counter.inner().store(*n, Ordering::Relaxed);
        }
        for (name, counts) in sinks {
            for (outcome, n) in SINK_OUTCOMES.iter().zip(counts) {
                let counter = self.sinks.get_or_create(&SinkLabels {
                    sink: (*name).to_owned(),
                    outcome: (*outcome).to_owned(),
                });
                counter.inner().store(*n, Ordering::Relaxed);
            }
        }
        self.jvms.set(i64::try_from(jvms).unwrap_or(i64::MAX));
        self.incidents
            .set(i64::try_from(incidents).unwrap_or(i64::MAX));
        self.decode_errors
            .inner()
            .store(session.decode_errors, Ordering::Relaxed);
        let gauge = |g: &Gauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        gauge(&self.ring_bytes, session.ring_bytes);
        gauge(&self.ring_used, session.ring_used);
        gauge(&self.ring_used_max, session.ring_used_max);
        self.last_tick_ms
            .store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// Every program is attached and running JVMs are tracked.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
        self.last_tick_ms
            .store(self.elapsed_ms(), Ordering::Relaxed);
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// `/healthz`: the event loop turned within [`STALL_AFTER`].
    pub fn health(&self) -> Result<(), String> {
        let since = self
            .elapsed_ms()
            .saturating_sub(self.last_tick_ms.load(Ordering::Relaxed));
        if since > u64::try_from(STALL_AFTER.as_millis()).unwrap_or(u64::MAX) {
            Err(format!("the event loop has not turned for {since} ms"))
        } else {
            Ok(())
        }
    }

    /// `/readyz`: every program attached, running JVMs tracked.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The answer to one request.
    pub fn respond(&self, path: &str) -> (StatusCode, &'static str, String) {
        const TEXT: &str = "text/plain; charset=utf-8";
        match path {
            "/metrics" => (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.render(),
            ),
            "/healthz" => match self.health() {
                Ok(()) => (StatusCode::OK, TEXT, "ok\n".to_owned()),
                Err(why) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
            },
            "/readyz" if self.is_ready() => (StatusCode::OK, TEXT, "ready\n".to_owned()),
            "/readyz" => (
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                "starting: programs not attached yet\n".to_owned(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                TEXT,
                "not found: /metrics, /healthz, /readyz\n".to_owned(),
            ),
        }
    }
}

/// Serves `metrics` on `addr` until the runtime ends. Binds now, so a taken address fails the
/// start; connections are served on the runtime's tasks.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!("metrics: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (status, content_type, body) = metrics.respond(req.uri().path());
                    let response = Response::builder()
                        .status(status)
                        .header("content-type", content_type)
                        .body(Full::new(Bytes::from(body)));
                    async move { response }
                });
                let conn = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(5))
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!("metrics: a connection ended: {e}");
                }
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_in_the_exposition_format() {
        let m = Metrics::new("0.1.0", "abc", "0.14.0");
        m.event("exec");
        m.event("exec");
        m.alert("jvm_shell_spawn", "critical", "killed");
        m.reloaded(false);
        let session = SessionStats {
            ring_bytes: 4096,
            ring_used: 16,
            ring_used_max: 1024,
            ..SessionStats::default()
        };
        m.tick(
            &[("exec", 3)],
            &[("stdout", [5, 0, 0, 0, 1, 0, 2])],
            2,
            1,
            &session,
        );
        let text = m.render();
        for line in [
            "detector_events_total{kind=\"exec\"} 2",
            "detector_kernel_lost_events_total{kind=\"exec\"} 3",
            "detector_alerts_total{rule=\"jvm_shell_spawn\",severity=\"critical\",action=\"killed\"} 1",
            "detector_sink_alerts_total{sink=\"stdout\",outcome=\"sent\"} 5",
            "detector_sink_alerts_total{sink=\"stdout\",outcome=\"dropped\"} 1",
            "detector_sink_alerts_total{sink=\"stdout\",outcome=\"evicted\"} 2",
            "detector_jvms 2",
            "detector_incidents_open 1",
            "detector_policy_reload_failures_total 1",
            "detector_ring_buffer_size_bytes 4096",
            "detector_ring_buffer_used_bytes 16",
            "detector_ring_buffer_used_max_bytes 1024",
            "detector_build_info{version=\"0.1.0\",commit=\"abc\",aya=\"0.14.0\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn ready_and_healthy_follow_the_loop() {
        let m = Metrics::new("v", "c", "a");
        assert_eq!(m.respond("/readyz").0, StatusCode::SERVICE_UNAVAILABLE);
        m.set_ready();
        assert_eq!(m.respond("/readyz").0, StatusCode::OK);
        assert_eq!(m.respond("/healthz").0, StatusCode::OK);
        // A loop whose last tick is older than the stall limit is not healthy.
        m.last_tick_ms.store(0, Ordering::Relaxed);
        let stalled = Metrics {
            started: Instant::now() - STALL_AFTER - Duration::from_secs(1),
            ..Metrics::new("v", "c", "a")
        };
        let (status, _, body) = stalled.respond("/healthz");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("has not turned"), "{body}");
        assert_eq!(m.respond("/nope").0, StatusCode::NOT_FOUND);
    }
}
