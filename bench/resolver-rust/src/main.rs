//! Same workload as bench/resolver-swift: cold lookups with 256 in flight (distinct names
//! answered by a wildcard), then cached lookups of one warm name.
//! Usage: trust-dns-bench PORT [COLD_LOOKUPS] [IN_FLIGHT]
use futures_util::stream::{self, StreamExt};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use trust_dns_resolver::config::{NameServerConfig, Protocol, ResolverConfig, ResolverOpts};
use trust_dns_resolver::proto::rr::RecordType;
use trust_dns_resolver::TokioAsyncResolver;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).expect("usage: trust-dns-bench PORT [COLD] [IN_FLIGHT]");
    let cold: usize = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(50_000);
    let in_flight: usize = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(256);

    let mut config = ResolverConfig::new();
    let address: SocketAddr = format!("127.0.0.1:{}", port).parse().unwrap();
    config.add_name_server(NameServerConfig {
        socket_addr: address,
        protocol: Protocol::Udp,
        tls_dns_name: None,
        trust_nx_responses: true,
        bind_addr: None,
    });
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 2;
    opts.cache_size = cold + 16;
    opts.num_concurrent_reqs = 1;
    let resolver = TokioAsyncResolver::tokio(config, opts).expect("resolver");

    let _ = resolver.lookup("warmup.bench.test.", RecordType::A).await;

    let start = Instant::now();
    let failures = stream::iter(0..cold)
        .map(|i| {
            let resolver = resolver.clone();
            async move { resolver.lookup(format!("n{}.bench.test.", i), RecordType::A).await.is_err() }
        })
        .buffer_unordered(in_flight)
        .filter(|failed| futures_util::future::ready(*failed))
        .count()
        .await;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "rust trust-dns  cold: {:8.0} lookups/s  ({} lookups, {} in flight, {} failed, {:.2} s)",
        cold as f64 / seconds, cold, in_flight, failures, seconds
    );

    let iterations = 200_000;
    let start = Instant::now();
    let mut sink = 0usize;
    for _ in 0..iterations {
        if let Ok(lookup) = resolver.lookup("n1.bench.test.", RecordType::A).await {
            sink += lookup.iter().count();
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "rust trust-dns cached: {:8.0} ns/lookup async lookup() ({:.1} M lookups/s)",
        seconds * 1e9 / iterations as f64, iterations as f64 / seconds / 1e6
    );
    assert_eq!(sink, iterations);
}
