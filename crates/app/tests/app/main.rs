//! The application layer over real stores and read models: commands,
//! processes, read-your-writes, idempotency, concurrency, tenant isolation.
//! Time comes from a `ManualClock`; nothing sleeps to make time pass.

mod harness;

mod channel;
mod concurrency;
mod contacts;
mod conversations;
mod idempotency;
mod inbound;
mod isolation;
mod send;
