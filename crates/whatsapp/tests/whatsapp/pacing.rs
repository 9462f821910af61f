//! The send pace: the rate limiter on tokio's paused clock.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use palaver_whatsapp::RateLimiter;
use tokio::time::Instant;

fn n(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).expect("non-zero")
}

#[tokio::test(start_paused = true)]
async fn a_burst_passes_then_the_pace_holds() {
    let limiter = RateLimiter::new(n(10), n(3));
    let start = Instant::now();
    for _ in 0..3 {
        limiter.acquire().await;
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "the burst is immediate");
    for _ in 0..10 {
        limiter.acquire().await;
    }
    // Ten more at 10 per second: one every 100 ms.
    assert_eq!(start.elapsed(), Duration::from_millis(1000));
}

#[tokio::test(start_paused = true)]
async fn a_quiet_period_refills_the_burst() {
    let limiter = RateLimiter::new(n(10), n(2));
    for _ in 0..4 {
        limiter.acquire().await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let start = Instant::now();
    limiter.acquire().await;
    limiter.acquire().await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    limiter.acquire().await;
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn concurrent_tasks_share_the_pace() {
    let limiter = Arc::new(RateLimiter::per_second(n(80)));
    let start = Instant::now();
    let tasks: Vec<_> = (0..160)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                limiter.acquire().await;
                Instant::now()
            })
        })
        .collect();
    let mut times = Vec::new();
    for task in tasks {
        times.push(task.await.expect("task"));
    }
    times.sort();
    // 80 at once, then 80 more over the next second.
    assert_eq!(times.iter().filter(|t| **t == start).count(), 80);
    let last = times.last().expect("times").duration_since(start);
    assert_eq!(last, Duration::from_millis(1000));
}
