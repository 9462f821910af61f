//! Prometheus metrics served at `/metrics`: gRPC request counts and
//! latencies, event-store append latency, projection lag, and how often
//! first inbox pages came from the read models' cache.

use std::{
    sync::{Arc, atomic::AtomicU64},
    task::{Context, Poll},
    time::Instant,
};

use async_trait::async_trait;
use palaver_projections::{Projections, queries::ReadModels};
use palaver_store::{
    AllFilter, AppendResult, Direction, EventStore, ExpectedRevision, NewEvent, Position, ReadFrom,
    RecordedEvent, StreamName, Subscription,
};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::Gauge,
        histogram::Histogram,
    },
    registry::Registry,
};
use tokio::sync::watch;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 100 µs to about 1.6 s.
    prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 15)
}

/// Every metric Palaver exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<std::sync::Mutex<Registry>>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    append_latency: Histogram,
    lag_events: Gauge,
    lag_seconds: Gauge<f64, AtomicU64>,
    webhooks: Family<OutcomeLabels, Counter>,
    webhook_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("palaver");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<MethodLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        let append_latency = Histogram::new(latency_buckets());
        let lag_events = Gauge::default();
        let lag_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "grpc_requests",
            "gRPC requests by method and status code",
            requests.clone(),
        );
        registry.register(
            "grpc_request_duration_seconds",
            "gRPC request latency",
            latency.clone(),
        );
        registry.register(
            "store_append_duration_seconds",
            "Event store append latency",
            append_latency.clone(),
        );
        registry.register(
            "projection_lag_events",
            "Events not yet in every read model",
            lag_events.clone(),
        );
        registry.register(
            "projection_lag_seconds",
            "Age of the oldest event not yet in every read model",
            lag_seconds.clone(),
        );
        let webhooks = Family::<OutcomeLabels, Counter>::default();
        let webhook_latency = Histogram::new(latency_buckets());
        registry.register(
            "webhooks",
            "WhatsApp webhook posts by outcome (stored, duplicate, unsigned, invalid, error)",
            webhooks.clone(),
        );
        registry.register(
            "webhook_duration_seconds",
            "Time from a webhook post to its durable acknowledgement",
            webhook_latency.clone(),
        );
        Metrics {
            webhooks,
            webhook_latency,
            registry: Arc::new(std::sync::Mutex::new(registry)),
            requests,
            latency,
            append_latency,
            lag_events,
            lag_seconds,
        }
    }
}

impl Metrics {
    /// Exports how often `read_models` answered first inbox pages from
    /// its cache (read on each scrape).
    pub fn watch_inbox_cache(&self, read_models: ReadModels) {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .register_collector(Box::new(InboxCacheCollector(read_models)));
    }

    /// The Prometheus text exposition, with the projection lag measured now.
    pub async fn render(&self, projections: &Projections) -> String {
        if let Ok(lag) = projections.lag().await {
            self.lag_events.set(i64::try_from(lag.events).unwrap_or(i64::MAX));
            self.lag_seconds.set(lag.seconds);
        }
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            tracing::warn!(%error, "encoding metrics");
        }
        text
    }

    /// Counts one webhook post and how long it took.
    pub fn record_webhook(&self, outcome: &'static str, seconds: f64) {
        self.webhooks.get_or_create(&OutcomeLabels { outcome }).inc();
        self.webhook_latency.observe(seconds);
    }

    fn record_request(&self, method: &str, code: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                code: code.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .observe(seconds);
    }
}

/// A tower layer that counts and times every gRPC request.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer(pub Metrics);

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            // Errors come back "trailers-only", with grpc-status in the
            // headers; a success carries it in the trailers, after the body.
            let code = match &response {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned(),
                Err(_) => "transport".to_owned(),
            };
            metrics.record_request(&method, &code, started.elapsed().as_secs_f64());
            response
        })
    }
}

/// An event store that times its appends.
#[derive(Clone)]
pub struct MeteredStore<S> {
    inner: S,
    metrics: Metrics,
}

impl<S> std::fmt::Debug for MeteredStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredStore").finish_non_exhaustive()
    }
}

impl<S: EventStore + Clone> MeteredStore<S> {
    pub fn new(inner: S, metrics: Metrics) -> Self {
        MeteredStore { inner, metrics }
    }
}

#[async_trait]
impl<S: EventStore + Clone> EventStore for MeteredStore<S> {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> palaver_store::Result<AppendResult> {
        let started = Instant::now();
        let result = self.inner.append(stream, expected, events).await;
        self.metrics
            .append_latency
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> palaver_store::Result<Vec<RecordedEvent>> {
        self.inner.read_stream(stream, from, direction, limit).await
    }

    async fn stream_revision(&self, stream: &StreamName) -> palaver_store::Result<Option<u64>> {
        self.inner.stream_revision(stream).await
    }

    async fn read_all(
        &self,
        after: Position,
        filter: &AllFilter,
        limit: usize,
    ) -> palaver_store::Result<Vec<RecordedEvent>> {
        self.inner.read_all(after, filter, limit).await
    }

    async fn head(&self) -> palaver_store::Result<Position> {
        self.inner.head().await
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.watch_head()
    }

    fn subscribe_all(&self, after: Position, filter: AllFilter) -> Subscription {
        self.inner.subscribe_all(after, filter)
    }
}

/// `inbox_cache_hits_total` and `inbox_cache_misses_total`, from the
/// read models' own counts.
#[derive(Debug)]
struct InboxCacheCollector(ReadModels);

impl Collector for InboxCacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.inbox_cache_stats();
        for (name, help, value) in [
            (
                "inbox_cache_hits",
                "First inbox pages answered from the cache",
                stats.hits,
            ),
            (
                "inbox_cache_misses",
                "First inbox pages read from the read-model tables",
                stats.misses,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        Ok(())
    }
}
