//! Event feeds and audits: a workspace sees only its own streams.

use std::{collections::HashMap, pin::Pin, time::Duration};

use futures::{Stream, StreamExt};
use palaver_projections::Error as ProjectionError;
use palaver_proto::v1 as pb;
use palaver_store::{AllFilter, Direction, Position, ReadFrom, RecordedEvent, StreamName};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::Api;
use crate::{
    auth::{Role, principal},
    convert,
    status::{invalid, store_status},
};

/// Events a feed may have in flight to a slow client.
const FEED_BUFFER: usize = 256;
/// Owners remembered per feed before the cache starts over.
const OWNER_CACHE: usize = 10_000;

type Feed = Pin<Box<dyn Stream<Item = Result<pb::RecordedEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::event_service_server::EventService for Api {
    type SubscribeStream = Feed;

    async fn subscribe(&self, request: Request<pb::SubscribeRequest>) -> Result<Response<Feed>, Status> {
        let workspace = convert::uuid(&request.get_ref().workspace_id, "workspace_id")?;
        principal(&request)?.authorize(workspace, Role::Read)?;
        let request = request.into_inner();
        let mut filter = AllFilter {
            stream_prefixes: request.categories.iter().map(|c| format!("{c}-")).collect(),
            event_types: request.event_types,
        };
        if filter.stream_prefixes.iter().any(|p| p.len() < 2) {
            return Err(invalid("categories", "a category cannot be empty"));
        }
        filter
            .validate()
            .map_err(|e| invalid("categories", e.to_string()))?;
        let store = self.app.store();
        let mut events = store.subscribe_all(Position(request.after_position), std::mem::take(&mut filter));
        let projections = self.app.projections();
        let read_models = self.app.read_models();
        let mut shutdown = self.options.shutdown.clone();
        let (sender, receiver) = mpsc::channel(FEED_BUFFER);
        tokio::spawn(async move {
            let mut owners: HashMap<String, Option<Uuid>> = HashMap::new();
            loop {
                let event: RecordedEvent = tokio::select! {
                    next = events.next() => match next {
                        Some(Ok(event)) => event,
                        Some(Err(error)) => {
                            let _ = sender.send(Err(store_status(error))).await;
                            return;
                        }
                        None => return,
                    },
                    () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {
                        let _ = sender.send(Err(Status::unavailable("the server is shutting down; resume from the last position"))).await;
                        return;
                    }
                    () = sender.closed() => return,
                };
                // Ownership is learnt by the read models: wait until they
                // have seen this event, so no event is judged too early.
                loop {
                    match projections.wait_for(event.position, Duration::from_secs(5)).await {
                        Ok(()) => break,
                        Err(ProjectionError::NotCaughtUp { .. }) if !sender.is_closed() => continue,
                        Err(error) => {
                            let _ = sender.send(Err(Status::unavailable(error.to_string()))).await;
                            return;
                        }
                    }
                }
                if owners.len() > OWNER_CACHE {
                    owners.clear();
                }
                let owner = match owners.get(event.stream.as_str()) {
                    Some(owner) => *owner,
                    None => match read_models.stream_owner(event.stream.as_str()).await {
                        Ok(owner) => {
                            owners.insert(event.stream.to_string(), owner);
                            owner
                        }
                        Err(error) => {
                            let _ = sender.send(Err(Status::unavailable(error.to_string()))).await;
                            return;
                        }
                    },
                };
                if owner == Some(workspace) && sender.send(Ok(pb::RecordedEvent::from(&event))).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn read_stream(
        &self,
        request: Request<pb::ReadStreamRequest>,
    ) -> Result<Response<pb::ReadStreamResponse>, Status> {
        let workspace = convert::uuid(&request.get_ref().workspace_id, "workspace_id")?;
        principal(&request)?.authorize(workspace, Role::Read)?;
        let request = request.into_inner();
        let stream = StreamName::new(request.stream.clone()).map_err(|e| invalid("stream", e.to_string()))?;
        let limit = match request.limit {
            0 => 100,
            limit @ 1..=1000 => limit as usize,
            _ => return Err(invalid("limit", "must be 1 to 1000")),
        };
        // Another workspace's stream does not exist, as far as this caller knows.
        let owner = self
            .app
            .read_models()
            .stream_owner(stream.as_str())
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        if owner != Some(workspace) {
            return Err(Status::not_found(format!("no stream {stream}")));
        }
        let events = self
            .app
            .store()
            .read_stream(
                &stream,
                ReadFrom::Revision(request.from_revision),
                Direction::Forwards,
                limit,
            )
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ReadStreamResponse {
            events: events.iter().map(pb::RecordedEvent::from).collect(),
        }))
    }
}
