//! The HTTP API's JSON bodies: decode, round-trip, validate, plan.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| novacula_fuzz::wire_json(data));
