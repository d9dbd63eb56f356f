//! An arbitrary sequence of operations against a real writer and reader,
//! checked step by step against a plain model of the channel; see
//! `kekbit_fuzz::roundtrip`.
#![no_main]

use kekbit_fuzz::roundtrip::{Scenario, run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|scenario: Scenario| run(scenario));
