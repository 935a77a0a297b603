//! CONTRACT STUB — humantime (de)serialization for `Duration` and `Option<Duration>`.
#![allow(unused_variables, clippy::unimplemented)]
use serde::{Deserializer, Serializer};
use std::time::Duration;

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    unimplemented!()
}
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    unimplemented!()
}
pub mod option {
    use super::*;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        unimplemented!()
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        unimplemented!()
    }
}
