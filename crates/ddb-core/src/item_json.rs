//! DynamoDB items as JSON: plain (values unwrapped, as a person reads them) or typed
//! (`{"S": "..."}`, as the AWS CLI prints them).

use crate::records::Item;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

/// How items are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ItemFormat {
    /// Attribute values unwrapped: `{"pk": "MSG#..."}`.
    #[default]
    Json,
    /// Typed attribute values, as DynamoDB's API and the AWS CLI write them: `{"pk": {"S": "MSG#..."}}`.
    DynamodbJson,
}

fn b64(b: &Blob) -> Value {
    Value::String(aws_smithy_types::base64::encode(b.as_ref()))
}

fn number(n: &str) -> Value {
    // Numbers that do not fit JSON's (huge or very precise ones) stay exact as strings.
    n.parse::<i64>()
        .map(Value::from)
        .ok()
        .or_else(|| n.parse::<f64>().ok().and_then(Number::from_f64).filter(|f| f.to_string() == n).map(Value::Number))
        .unwrap_or_else(|| Value::String(n.to_string()))
}

/// A value unwrapped: S as a string, N as a number, B as base64, sets and lists as arrays.
pub fn plain_value(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n),
        AttributeValue::B(b) => b64(b),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Ss(v) => Value::Array(v.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(v) => Value::Array(v.iter().map(|n| number(n)).collect()),
        AttributeValue::Bs(v) => Value::Array(v.iter().map(b64).collect()),
        AttributeValue::L(v) => Value::Array(v.iter().map(plain_value).collect()),
        AttributeValue::M(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), plain_value(v))).collect()),
        _ => Value::Null,
    }
}

/// A value in DynamoDB's typed JSON.
pub fn typed_value(v: &AttributeValue) -> Value {
    let one = |tag: &str, val: Value| Value::Object(Map::from_iter([(tag.to_string(), val)]));
    match v {
        AttributeValue::S(s) => one("S", Value::String(s.clone())),
        AttributeValue::N(n) => one("N", Value::String(n.clone())),
        AttributeValue::B(b) => one("B", b64(b)),
        AttributeValue::Bool(b) => one("BOOL", Value::Bool(*b)),
        AttributeValue::Null(_) => one("NULL", Value::Bool(true)),
        AttributeValue::Ss(v) => one("SS", Value::Array(v.iter().cloned().map(Value::String).collect())),
        AttributeValue::Ns(v) => one("NS", Value::Array(v.iter().cloned().map(Value::String).collect())),
        AttributeValue::Bs(v) => one("BS", Value::Array(v.iter().map(b64).collect())),
        AttributeValue::L(v) => one("L", Value::Array(v.iter().map(typed_value).collect())),
        AttributeValue::M(m) => one("M", Value::Object(m.iter().map(|(k, v)| (k.clone(), typed_value(v))).collect())),
        _ => Value::Null,
    }
}

/// An item as a JSON object (keys sorted, so output is stable).
pub fn item_to_json(item: &Item, format: ItemFormat) -> Value {
    let conv = match format {
        ItemFormat::Json => plain_value,
        ItemFormat::DynamodbJson => typed_value,
    };
    Value::Object(item.iter().map(|(k, v)| (k.clone(), conv(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn plain_and_typed() {
        let item: Item = HashMap::from([
            ("s".into(), AttributeValue::S("x".into())),
            ("n".into(), AttributeValue::N("42".into())),
            ("f".into(), AttributeValue::N("1.5".into())),
            ("big".into(), AttributeValue::N("123456789012345678901234567890".into())),
            ("b".into(), AttributeValue::B(Blob::new(b"hi".to_vec()))),
            ("l".into(), AttributeValue::L(vec![AttributeValue::Bool(true), AttributeValue::Null(true)])),
        ]);
        let plain = item_to_json(&item, ItemFormat::Json).to_string();
        assert_eq!(plain, r#"{"b":"aGk=","big":"123456789012345678901234567890","f":1.5,"l":[true,null],"n":42,"s":"x"}"#);
        let typed = item_to_json(&item, ItemFormat::DynamodbJson);
        assert_eq!(typed["n"], serde_json::json!({"N": "42"}));
        assert_eq!(typed["l"], serde_json::json!({"L": [{"BOOL": true}, {"NULL": true}]}));
    }
}
