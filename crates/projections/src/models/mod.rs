//! Palaver's read models: the inbox, conversation timelines, window state,
//! contacts, the workspace owning each stream, and pending timers. Each is a [`Projector`](crate::Projector) over its own
//! tables (`sql/*.sql` holds their schemas, documented column by column);
//! [`crate::queries`] reads them.

mod contacts;
mod inbox;
mod owners;
pub(crate) mod summary;
mod timeline;
mod timers;
mod window;

use std::sync::Arc;

pub use contacts::ContactsProjector;
pub use inbox::InboxProjector;
pub use owners::OwnersProjector;
pub use timeline::TimelineProjector;
pub use timers::TimersProjector;
pub use window::WindowProjector;

use crate::Projector;

/// Every read model Palaver keeps.
pub fn all() -> Arc<[Arc<dyn Projector>]> {
    Arc::from(vec![
        Arc::new(InboxProjector) as Arc<dyn Projector>,
        Arc::new(TimelineProjector),
        Arc::new(WindowProjector),
        Arc::new(ContactsProjector),
        Arc::new(OwnersProjector),
        Arc::new(TimersProjector),
    ])
}
