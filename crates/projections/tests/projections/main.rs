//! Integration tests of the projections, one binary: the read models and
//! the runner (including a crash in the middle of a catch-up).

mod postgres;
mod read_models;
mod runner;
