//! End-to-end tests: they start the real `palaver` binary on a temporary
//! data folder and drive it as a user or an operator would.

mod projections;
mod serve;
