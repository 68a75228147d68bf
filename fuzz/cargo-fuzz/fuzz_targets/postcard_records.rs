//! The stored postcard records: decode, round-trip, plan.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| novacula_fuzz::postcard_records(data));
