//! Shared pieces of the differential query tests: seeded data generation, a naive reference
//! evaluator, a random query generator and the result comparison.

pub mod compare;
pub mod datagen;
pub mod querygen;
pub mod reference;
