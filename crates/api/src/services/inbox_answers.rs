//! ListInbox answered from encoded pages (ADR 0011).
//!
//! Teammates poll the first page of their inbox. The read models keep that
//! page between commits and hand the same shared page to every poll (ADR
//! 0010); converting it to protobuf and encoding it again for each poll
//! was about a third of the server's CPU per query. So ListInbox has a
//! route of its own: it encodes a shared page once, keeps the bytes for as
//! long as the page is shared, and answers every later poll of that page
//! with them. The bytes are what the generated handler would send, so
//! clients, reflection and generic gRPC tools see no difference.
//!
//! [`InboxRoutes`] is mounted in place of the generated InboxService
//! server, behind the same token check. It takes ListInbox itself and
//! hands every other method to the generated server. Decoding, errors and
//! message size limits are tonic's own (`tonic::server::Grpc`), as in the
//! generated code; this server configures no compression.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex, Weak},
    task::{Context, Poll},
};

use palaver_projections::queries::InboxPage;
use palaver_proto::v1::{self as pb, inbox_service_server::InboxServiceServer};
use tonic::{
    Request, Response, Status,
    body::Body,
    codegen::{BoxFuture, Bytes, Service, http},
    server::{Grpc, NamedService, UnaryService},
};
use tonic_prost::{
    ProstCodec,
    prost::{
        DecodeError, Message,
        bytes::{Buf, BufMut},
        encoding::{DecodeContext, WireType, skip_field},
    },
};

use super::Api;
use crate::convert;

/// The path of the one method this route answers itself.
const LIST_INBOX: &str = "/palaver.v1.InboxService/ListInbox";

/// Encoded pages kept at most; past it, all are dropped (every one still
/// shared: that many inbox filters are being polled at once).
const MAX_ANSWERS: usize = 1024;
/// The answers of pages no longer shared are dropped once the map has grown
/// to twice what was still shared at the last pruning, and at least to
/// this. Under steady writes each commit replaces the cached pages, and
/// their old answers (a few KiB each) would otherwise wait for
/// [`MAX_ANSWERS`].
const PRUNE_FLOOR: usize = 64;

/// The InboxService: ListInbox from encoded pages, the rest generated.
#[derive(Debug, Clone)]
pub struct InboxRoutes {
    api: Arc<Api>,
    answers: Arc<EncodedPages>,
    generated: InboxServiceServer<Api>,
}

impl InboxRoutes {
    pub fn new(api: Api) -> Self {
        InboxRoutes {
            generated: InboxServiceServer::new(api.clone()),
            api: Arc::new(api),
            answers: Arc::default(),
        }
    }
}

impl NamedService for InboxRoutes {
    const NAME: &'static str = <InboxServiceServer<Api> as NamedService>::NAME;
}

impl Service<http::Request<Body>> for InboxRoutes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<http::Request<Body>>::poll_ready(&mut self.generated, cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != LIST_INBOX {
            return self.generated.call(request);
        }
        let method = ListInbox {
            api: Arc::clone(&self.api),
            answers: Arc::clone(&self.answers),
        };
        Box::pin(async move {
            let mut grpc = Grpc::new(ProstCodec::<Encoded, pb::ListInboxRequest>::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// One ListInbox call.
struct ListInbox {
    api: Arc<Api>,
    answers: Arc<EncodedPages>,
}

impl UnaryService<pb::ListInboxRequest> for ListInbox {
    type Response = Encoded;
    type Future = BoxFuture<Response<Encoded>, Status>;

    fn call(&mut self, request: Request<pb::ListInboxRequest>) -> Self::Future {
        let (api, answers) = (Arc::clone(&self.api), Arc::clone(&self.answers));
        Box::pin(async move {
            let page = api.inbox_page(request).await?;
            Ok(Response::new(Encoded(answers.encoded(&page))))
        })
    }
}

/// Each shared page's encoded `ListInboxResponse`, by the page's address.
///
/// A page is never changed once read, so the same page always encodes to
/// the same bytes. An entry holds a [`Weak`] to its page, which keeps the
/// page's allocation (not its rows) from being freed and its address from
/// being reused: while an entry exists, only its own page can have its
/// address.
#[derive(Debug, Default)]
pub(crate) struct EncodedPages {
    answers: Mutex<Answers>,
}

#[derive(Debug, Default)]
struct Answers {
    by_page: HashMap<usize, (Weak<InboxPage>, Bytes)>,
    /// Size at which to drop the answers of pages no longer shared.
    prune_at: usize,
}

impl EncodedPages {
    /// `page` as a ListInbox answer.
    pub(crate) fn encoded(&self, page: &Arc<InboxPage>) -> Bytes {
        // Held by this caller alone: no cache keeps it, so nobody will
        // ask for it again (a later page, a read past the cache).
        if Arc::strong_count(page) == 1 {
            return encode(page);
        }
        let address = Arc::as_ptr(page) as usize;
        if let Some((_, bytes)) = self.lock().by_page.get(&address) {
            return bytes.clone();
        }
        let bytes = encode(page);
        let mut answers = self.lock();
        if answers.by_page.len() >= answers.prune_at.max(PRUNE_FLOOR) {
            answers.by_page.retain(|_, (page, _)| page.strong_count() > 0);
            if answers.by_page.len() >= MAX_ANSWERS {
                answers.by_page.clear();
            }
            answers.prune_at = (2 * answers.by_page.len()).min(MAX_ANSWERS);
        }
        answers
            .by_page
            .insert(address, (Arc::downgrade(page), bytes.clone()));
        bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_page.len()
    }
}

fn encode(page: &InboxPage) -> Bytes {
    convert::inbox_page(page).encode_to_vec().into()
}

/// An encoded `ListInboxResponse`, written out as it is. Only ever
/// encoded: the server never decodes an answer.
#[derive(Debug)]
pub(crate) struct Encoded(Bytes);

impl Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use palaver_projections::queries::{InboxRow, Status};
    use uuid::Uuid;

    use super::*;

    fn page(rows: usize) -> InboxPage {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 9, 30, 0).unwrap();
        InboxPage {
            rows: (0..rows)
                .map(|i| InboxRow {
                    conversation_id: Uuid::from_u128(i as u128 + 1),
                    workspace_id: Uuid::from_u128(7),
                    thread_id: Uuid::from_u128(i as u128 + 100),
                    channel: "whatsapp".to_owned(),
                    contact_id: Uuid::from_u128(i as u128 + 200),
                    contact_name: format!("Customer {i} 🙂"),
                    status: Status::Snoozed,
                    snoozed_until: Some(at + chrono::Duration::hours(2)),
                    assignee: (i % 2 == 0).then(|| "ana".to_owned()),
                    last_message_preview: Some("Where is my order?".to_owned()),
                    last_message_kind: Some("text".to_owned()),
                    last_message_direction: Some("inbound".to_owned()),
                    last_activity_at: at,
                    unread_count: i as u32,
                    waiting_since: Some(at),
                    needs_template: i % 3 == 0,
                    window_closes_at: Some(at + chrono::Duration::hours(24)),
                    window_closing_soon: i % 4 == 0,
                    origin: "inbound".to_owned(),
                    started_at: at,
                })
                .collect(),
            next_cursor: Some("cursor".to_owned()),
        }
    }

    /// A path that no longer matches would leave every ListInbox to the
    /// generated server: still correct, so no other test would notice.
    #[test]
    fn the_route_takes_the_services_list_inbox_path() {
        let service = <InboxRoutes as NamedService>::NAME;
        assert_eq!(service, "palaver.v1.InboxService");
        assert_eq!(LIST_INBOX, format!("/{service}/ListInbox"));
    }

    #[test]
    fn an_encoded_page_decodes_to_what_the_generated_handler_sends() {
        let page = Arc::new(page(5));
        let _cache = Arc::clone(&page);
        let bytes = EncodedPages::default().encoded(&page);
        let decoded = pb::ListInboxResponse::decode(bytes.clone()).unwrap();
        assert_eq!(decoded, convert::inbox_page(&page));
        assert_eq!(decoded.rows.len(), 5);
        assert_eq!(decoded.next_cursor, "cursor");
        // And `Encoded` writes those bytes unchanged, at their length.
        let encoded = Encoded(bytes.clone());
        assert_eq!(encoded.encoded_len(), bytes.len());
        assert_eq!(encoded.encode_to_vec(), bytes.to_vec());
    }

    #[test]
    fn a_shared_page_is_encoded_once_and_a_new_page_afresh() {
        let answers = EncodedPages::default();
        let first = Arc::new(page(3));
        let cache = Arc::clone(&first);
        let once = answers.encoded(&first);
        let again = answers.encoded(&cache);
        // The same allocation: the kept bytes, not an equal copy.
        assert_eq!(once.as_ptr(), again.as_ptr());
        assert_eq!(answers.len(), 1);

        // The cache moved on to a new page: its own answer, never the old one.
        drop((first, cache));
        let second = Arc::new(page(4));
        let _cache = Arc::clone(&second);
        let fresh = answers.encoded(&second);
        assert_eq!(pb::ListInboxResponse::decode(fresh).unwrap().rows.len(), 4);
    }

    #[test]
    fn a_page_held_by_its_caller_alone_is_not_kept() {
        let answers = EncodedPages::default();
        let page = Arc::new(page(2));
        let bytes = answers.encoded(&page);
        assert_eq!(pb::ListInboxResponse::decode(bytes).unwrap().rows.len(), 2);
        assert_eq!(answers.len(), 0);
    }

    #[test]
    fn answers_of_pages_no_longer_shared_are_dropped() {
        let answers = EncodedPages::default();
        let mut live = Vec::new();
        for i in 0..MAX_ANSWERS + 10 {
            let page = Arc::new(page(1));
            let held = Arc::clone(&page);
            answers.encoded(&page);
            // Keep a few pages shared; the rest are dropped at once.
            if i % 100 == 0 {
                live.push((page, held));
            }
        }
        assert!(answers.len() <= PRUNE_FLOOR, "{} kept", answers.len());
        for (page, _) in &live {
            let bytes = answers.encoded(page);
            assert_eq!(pb::ListInboxResponse::decode(bytes).unwrap().rows.len(), 1);
        }
    }
}
