//! The test clock service: only served in the opt-in test mode.

use std::sync::Arc;

use palaver_app::ManualClock;
use palaver_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::{auth::principal, convert};

/// Sets the server's clock. Admin, and only in test mode.
#[derive(Debug, Clone)]
pub struct TestClock {
    pub clock: Arc<ManualClock>,
}

#[tonic::async_trait]
impl pb::test_clock_service_server::TestClockService for TestClock {
    async fn set_time(
        &self,
        request: Request<pb::SetTimeRequest>,
    ) -> Result<Response<pb::SetTimeResponse>, Status> {
        if principal(&request)?.role < crate::Role::Admin {
            return Err(Status::permission_denied(
                "setting the clock needs an admin token",
            ));
        }
        let now = convert::time(request.into_inner().now, "now")?;
        tracing::warn!(%now, "test clock set");
        self.clock.set(now);
        Ok(Response::new(pb::SetTimeResponse {}))
    }
}
