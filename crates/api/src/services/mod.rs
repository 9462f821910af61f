//! One module per gRPC service; every handler checks the caller's scope,
//! converts the request, calls [`palaver_app::App`] and converts back.

mod campaigns;
mod channel;
mod contacts;
mod conversations;
mod events;
mod inbox;
mod inbox_answers;
mod test_clock;
mod webhooks;

use palaver_app::{App, CommandContext};
use palaver_domain::ids::Actor;
use palaver_proto::v1 as pb;
use palaver_store::Position;
use tonic::{Request, Status};
use uuid::Uuid;

pub use inbox_answers::InboxRoutes;
pub use test_clock::TestClock;

use crate::{
    ApiOptions,
    auth::{Role, principal},
    convert,
    status::invalid,
};

/// Every service's handlers share this.
#[derive(Clone, Debug)]
pub struct Api {
    pub app: App,
    pub options: ApiOptions,
}

/// Longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// The context of a command: checks the token covers the workspace with
/// `role`, and takes correlation id, idempotency key and expected version.
pub(crate) fn command_context<T>(
    request: &Request<T>,
    options: Option<&pb::CommandOptions>,
    role: Role,
) -> Result<CommandContext, Status> {
    let options = options.ok_or_else(|| invalid("options", "is required"))?;
    let workspace = convert::workspace(&options.workspace_id)?;
    let caller = principal(request)?;
    caller.authorize(workspace.as_uuid(), role)?;
    let mut ctx = CommandContext::new(workspace, Actor::Service(caller.name.clone()));
    ctx.correlation_id = Some(
        match convert::optional_uuid(&options.correlation_id, "options.correlation_id")? {
            Some(id) => id,
            None => Uuid::now_v7(),
        },
    );
    if !options.idempotency_key.is_empty() {
        if options.idempotency_key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(invalid(
                "options.idempotency_key",
                format!("longer than {MAX_IDEMPOTENCY_KEY} bytes"),
            ));
        }
        ctx.idempotency_key = Some(options.idempotency_key.clone());
    }
    ctx.expected_version = options.expected_version;
    tracing::info!(
        workspace = %workspace,
        actor = %ctx.actor,
        correlation_id = ?ctx.correlation_id,
        "command"
    );
    Ok(ctx)
}

/// The workspace and minimum position of a query, after the scope check.
pub(crate) fn query_context<T>(
    request: &Request<T>,
    options: Option<&pb::QueryOptions>,
) -> Result<(palaver_domain::ids::WorkspaceId, Option<Position>), Status> {
    let options = options.ok_or_else(|| invalid("options", "is required"))?;
    let workspace = convert::workspace(&options.workspace_id)?;
    principal(request)?.authorize(workspace.as_uuid(), Role::Read)?;
    let position = (options.min_position > 0).then_some(Position(options.min_position));
    Ok((workspace, position))
}

pub(crate) fn result(position: Position) -> Option<pb::CommandResult> {
    Some(pb::CommandResult { position: position.0 })
}
