//! The answers every operation can give because of the layers it runs
//! through, added to the OpenAPI document by the layer that gives them — so
//! a handler documents only its own, and the document lists every status
//! an endpoint can return:
//!
//! - the [`Caller`](crate::server::auth::Caller) extractor: `401` without a
//!   valid token, `429` (`Retry-After`) past the per-user rate limit;
//! - [`Path`](super::extract::Path), [`Query`](super::extract::Query) and
//!   [`Body`](super::extract::Body): `400` naming what does not fit; a JSON
//!   body also `413` and `415`; a path id that could be one but names
//!   nothing is `404`, and a path id is documented as the ULID it must be;
//! - the data layer: `503` (`Retry-After`) when the database is lost,
//!   whether or not the change was saved (`code` says which).
//!
//! It also states the rules of [`crate::server::input`] where a schema
//! names them by `format` (`line`, `text`, …): as the `pattern` that
//! accepts exactly what the check does; and the password length this
//! server asks for.

use utoipa::openapi::{
    header::HeaderBuilder,
    path::{Operation, ParameterIn},
    response::ResponseBuilder,
    schema::{AdditionalProperties, ArrayItems, ObjectBuilder, SchemaFormat, Type},
    ContentBuilder, OpenApi, Ref, RefOr, Schema,
};

use crate::server::input::{Kind, ID_PATTERN};

/// A reaction's name in the path ([`crate::server::posts::check_emoji`]).
const EMOJI_PATTERN: &str = "^[a-z0-9_+-]{1,64}$";

/// Adds the layers' answers to every operation of `document`, states the
/// input rules, and that a new password has at least `min_password`
/// characters.
pub fn complete(document: &mut OpenApi, min_password: usize) {
    if let Some(components) = document.components.as_mut() {
        for (name, schema) in components.schemas.iter_mut() {
            state_rules(schema);
            if let RefOr::T(Schema::Object(object)) = schema {
                for field in PASSWORDS
                    .iter()
                    .filter(|(schema, _)| schema == name)
                    .map(|(_, field)| field)
                {
                    if let Some(RefOr::T(Schema::Object(password))) =
                        object.properties.get_mut(*field)
                    {
                        password.min_length = Some(min_password);
                    }
                }
            }
        }
    }
    for (path, item) in document.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            complete_operation(path, operation);
        }
    }
}

/// The new passwords of a request, by schema and field.
const PASSWORDS: &[(&str, &str)] = &[
    ("CreateUser", "password"),
    ("Redeem", "password"),
    ("ChangePassword", "newPassword"),
];

/// Replaces each `format` naming an input rule with the rule's pattern,
/// throughout `schema`.
fn state_rules(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else {
        return;
    };
    match schema {
        Schema::Object(object) => {
            if let Some(SchemaFormat::Custom(format)) = &object.format {
                if let Some(kind) = Kind::ALL.into_iter().find(|k| k.format() == format) {
                    object.format = None;
                    object.pattern = Some(kind.pattern());
                }
            }
            for property in object.properties.values_mut() {
                state_rules(property);
            }
            if let Some(AdditionalProperties::RefOr(inner)) =
                object.additional_properties.as_deref_mut()
            {
                state_rules(inner);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                state_rules(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(state_rules),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(state_rules),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(state_rules),
        _ => {}
    }
}

fn error(description: &str, retry_after: bool) -> RefOr<utoipa::openapi::Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ApiError")))
            .build(),
    );
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                .description(Some("seconds to wait before retrying"))
                .build(),
        );
    }
    RefOr::T(response.build())
}

fn complete_operation(path: &str, operation: &mut Operation) {
    let api = path.starts_with("/api/v1/");
    let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut path_ids = false;
    let mut has_params = false;
    for parameter in operation.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        has_params = true;
        if parameter.parameter_in == ParameterIn::Path {
            let pattern = if parameter.name == "emoji" {
                EMOJI_PATTERN
            } else {
                path_ids = true;
                ID_PATTERN
            };
            parameter.schema = Some(RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(pattern))
                    .build(),
            )));
        } else if let Some(schema) = parameter.schema.as_mut() {
            state_rules(schema);
        }
    }
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|body| match body {
            RefOr::T(body) => body.content.contains_key("application/json"),
            RefOr::Ref(_) => true,
        });
    let any_body = operation.request_body.is_some();
    let mut add = |status: &str, response: RefOr<utoipa::openapi::Response>| {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert(response);
    };
    if authenticated {
        add("401", error("not signed in: no valid bearer token", false));
        add(
            "429",
            error("too many requests from this user (Retry-After)", true),
        );
    }
    if has_params || any_body {
        add(
            "400",
            error("invalid input; `field` names what to fix", false),
        );
    }
    if any_body {
        add("413", error("the request body is too large", false));
    }
    if json_body {
        add(
            "415",
            error("the body is not sent as `application/json`", false),
        );
    }
    if path_ids {
        add("404", error("no such thing, or not yours to see", false));
    }
    if api {
        add(
            "503",
            error(
                "the database is unavailable (Retry-After); `code` says whether the change may have been saved",
                true,
            ),
        );
    }
}
