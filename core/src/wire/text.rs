//! OpenAPI schemas of the strings the API constrains, built from [`super::patterns`]:
//! the document and the rules never drift.

use super::patterns;
use utoipa::openapi::schema::{AdditionalProperties, Object, ObjectBuilder, SchemaType, Type};

fn string(pattern: &str) -> Object {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).build()
}
pub fn name() -> Object {
    string(patterns::NAME)
}
/// A name, or null.
pub fn optional_name() -> Object {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])).pattern(Some(patterns::NAME)).build()
}
/// The executor a new key is bound to: a name, or null.
pub fn key_executor() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(patterns::NAME))
        .description(Some("Bind the key to one executor name (otherwise it binds at its first sync)."))
        .build()
}
pub fn version() -> Object {
    string(patterns::VERSION)
}
pub fn sha256() -> Object {
    string(patterns::SHA256)
}
pub fn artifact() -> Object {
    string(patterns::ARTIFACT)
}
pub fn image_digest() -> Object {
    string(patterns::IMAGE_DIGEST)
}

/// A client's ports by name: TCP/UDP port numbers.
pub fn ports() -> Object {
    let port = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).maximum(Some(65535)).build();
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(port.into())))
        .description(Some("Port numbers by name (`p2p`, `http`, `engine`, `metrics`...); those left out are allocated by the control plane."))
        .build()
}
