//! The background workers of `palaver serve`: which run, with what
//! settings, and stopping them in order.

use std::sync::Arc;
use std::time::Duration;

use palaver_app::App;
use palaver_store_postgres::PgLeases;
use palaver_workers::campaigns::{CampaignSender, CampaignSenderOptions};
use palaver_workers::delivery::{DeliveryOptions, DeliveryWorker};
use palaver_workers::intake::Intake;
use palaver_workers::timers::{TimerScheduler, TimerSchedulerOptions, TimerService, TimerServiceOptions};
use palaver_workers::{
    Checkpoints, LeaseProvider, LocalLeases, PgCoordination, Process, RunOptions, Runtime, SqliteCheckpoints,
    run,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;

/// The running workers.
#[derive(Debug)]
pub struct Workers {
    tasks: JoinSet<()>,
}

/// Starts every worker the configuration allows, under `leases` if
/// instances share PostgreSQL; they stop when `stop` turns true.
pub fn start(
    config: &Config,
    app: &App,
    leases: Option<PgLeases>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Workers> {
    let (checkpoints, leases) = coordination(config, leases)?;
    let runtime = Runtime {
        store: app.store(),
        checkpoints,
        leases,
        options: RunOptions::default(),
    };
    let scheduler = TimerScheduler::new(
        app.clone(),
        TimerSchedulerOptions {
            window_warning: Duration::from_secs(u64::from(config.window_warning_minutes) * 60),
        },
    );
    let mut processes: Vec<Arc<dyn Process>> = vec![
        Arc::new(Intake::new(app.clone())),
        Arc::new(scheduler),
        Arc::new(CampaignSender::new(
            app.clone(),
            CampaignSenderOptions {
                rate: per_second(config.campaign_send_rate)?,
                ..CampaignSenderOptions::default()
            },
        )),
    ];
    match config.cloud_api()? {
        Some(api) => {
            let options = DeliveryOptions {
                rate: per_second(config.whatsapp_send_rate)?,
                ..DeliveryOptions::default()
            };
            let worker = DeliveryWorker::new(app.clone(), api, options).with_shutdown(stop.clone());
            processes.push(Arc::new(worker));
        }
        None => tracing::warn!(
            "whatsapp_access_token is not set: replies and templates are queued but not sent until it is"
        ),
    }
    let mut tasks = JoinSet::new();
    let timers = TimerService::new(app.clone(), TimerServiceOptions::default());
    tasks.spawn(timers.run(runtime.clone(), stop.clone()));
    for process in processes {
        tasks.spawn(run(runtime.clone(), process, stop.clone()));
    }
    Ok(Workers { tasks })
}

/// Where leases and checkpoints live: in PostgreSQL when `leases` is
/// given (several instances may run; see [`crate::server::shared_leases`]),
/// so each worker runs in one instance and moves on when it dies. Otherwise
/// this is the only instance: every lease is granted and checkpoints are a
/// file in the data folder.
fn coordination(
    config: &Config,
    leases: Option<PgLeases>,
) -> anyhow::Result<(Arc<dyn Checkpoints>, Arc<dyn LeaseProvider>)> {
    Ok(match leases {
        Some(leases) => {
            let holder = config.instance_name();
            tracing::info!(instance = %holder, "workers take their leases in PostgreSQL");
            let coordination = PgCoordination::new(leases, holder, config.lease_ttl());
            (Arc::new(Arc::clone(&coordination)), Arc::new(coordination))
        }
        None => {
            let checkpoints = SqliteCheckpoints::open(&config.data_dir.join("workers.db"))
                .map_err(|e| anyhow::anyhow!("opening worker checkpoints: {e}"))?;
            (Arc::new(checkpoints), Arc::new(LocalLeases))
        }
    })
}

fn per_second(rate: u32) -> anyhow::Result<std::num::NonZeroU32> {
    std::num::NonZeroU32::new(rate)
        .ok_or_else(|| anyhow::anyhow!("a send rate must be at least 1 per second"))
}

impl Workers {
    /// Waits up to `timeout` for the workers to finish what is in flight.
    pub async fn stop(mut self, timeout: Duration) {
        let finished =
            tokio::time::timeout(timeout, async { while self.tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!(
                ?timeout,
                "workers still busy after the drain timeout; stopping them"
            );
            self.tasks.abort_all();
        }
    }
}
