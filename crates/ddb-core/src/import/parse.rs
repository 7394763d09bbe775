//! One line of an import file to one item, strictly: DynamoDB's typed JSON (every type, nested,
//! as `scan --output dynamodb-json` and the AWS CLI write it) or plain JSON (as `scan --output
//! json` writes it). A line that is not an item says what is wrong with it.

use crate::item_json::ItemFormat;
use crate::records::{item_size, Item, MAX_ITEM_BYTES};
use crate::table::{GSI_NAME, GSI_PK, PK, SK};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// DynamoDB's limits on the keys' values, in bytes.
const MAX_PK_BYTES: usize = 2048;
const MAX_SK_BYTES: usize = 1024;
/// DynamoDB's limit on the nesting of lists and maps.
const MAX_DEPTH: usize = 32;

/// The format of a line: typed when its `pk` is an object (`{"S": ...}`), plain when a string.
pub fn detect(line: &[u8]) -> Result<ItemFormat, String> {
    match json_object(line)?.get(PK) {
        Some(Value::Object(_)) => Ok(ItemFormat::DynamodbJson),
        Some(Value::String(_)) => Ok(ItemFormat::Json),
        Some(_) => Err(format!("{PK} is neither a string nor a typed value ({{\"S\": ...}}); the table's keys are strings")),
        None => Err(missing_key(PK, &json_object(line)?)),
    }
}

fn json_object(line: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!("not a JSON object but {}", kind_of(&other))),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn missing_key(key: &str, item: &Map<String, Value>) -> String {
    let names: Vec<&str> = item.keys().take(5).map(String::as_str).collect();
    format!("no {key} attribute: not an item of this table (its keys are {PK} and {SK}; this one has {})", names.join(", "))
}

/// The item of one line in `format`, checked: its keys are the table's (strings, within their
/// limits) and it fits DynamoDB's 400 KB.
pub fn item(line: &[u8], format: ItemFormat) -> Result<Item, String> {
    let object = json_object(line)?;
    for key in [PK, SK] {
        if !object.contains_key(key) {
            return Err(missing_key(key, &object));
        }
    }
    let item: Item = object
        .into_iter()
        .map(|(name, v)| {
            let value = match format {
                ItemFormat::DynamodbJson => typed(v, 0),
                ItemFormat::Json => plain(v, 0),
            };
            let value = value.map_err(|e| format!("attribute {}: {e}", crate::error::quoted(&name)))?;
            Ok((self::name(name)?, value))
        })
        .collect::<Result<_, String>>()?;
    check_keys(&item, format)?;
    let size = item_size(&item);
    if size > MAX_ITEM_BYTES {
        return Err(format!("the item is {size} bytes, over DynamoDB's limit of {MAX_ITEM_BYTES} (400 KB)"));
    }
    Ok(item)
}

/// The table's keys and the index's: strings, not empty, within DynamoDB's sizes; what DynamoDB
/// would refuse only while the import writes (the rest of the file already in) is refused here.
fn check_keys(item: &Item, format: ItemFormat) -> Result<(), String> {
    if item.get(GSI_PK).is_some_and(|v| !v.as_s().is_ok_and(|s| !s.is_empty())) {
        return Err(format!("{GSI_PK} is the key of the index {GSI_NAME}: when there, it is a string that is not empty"));
    }
    for (key, max) in [(PK, MAX_PK_BYTES), (SK, MAX_SK_BYTES)] {
        match &item[key] {
            AttributeValue::S(s) if s.is_empty() => return Err(format!("{key} is empty")),
            AttributeValue::S(s) if s.len() > max => return Err(format!("{key} is {} bytes, over DynamoDB's {max} for this key", s.len())),
            AttributeValue::S(_) => {}
            _ if format == ItemFormat::Json => return Err(format!("{key} is not a string; the table's keys are strings")),
            _ => return Err(format!("{key} is not of type S; the table's keys are strings (another table's shape?)")),
        }
    }
    Ok(())
}

/// A plain JSON value: strings, numbers, booleans, null, arrays (lists) and objects (maps).
fn plain(v: Value, depth: usize) -> Result<AttributeValue, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than DynamoDB's {MAX_DEPTH} levels"));
    }
    Ok(match v {
        Value::String(s) => AttributeValue::S(s),
        Value::Number(n) => AttributeValue::N(number(&n.to_string())?),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Null => AttributeValue::Null(true),
        Value::Array(a) => AttributeValue::L(a.into_iter().map(|e| plain(e, depth + 1)).collect::<Result<_, _>>()?),
        Value::Object(m) => AttributeValue::M(
            m.into_iter()
                .map(|(k, e)| Ok((name(k)?, plain(e, depth + 1).map_err(|err| format!("in a map: {err}"))?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// DynamoDB's limit on an attribute name.
const MAX_NAME_BYTES: usize = 65_535;

fn name(k: String) -> Result<String, String> {
    if k.is_empty() {
        return Err("an attribute name is empty".into());
    }
    if k.len() > MAX_NAME_BYTES {
        return Err(format!("an attribute name is {} bytes, over DynamoDB's {MAX_NAME_BYTES}", k.len()));
    }
    Ok(k)
}

/// The type tags of DynamoDB's typed JSON.
const TAGS: &str = "S, N, B, BOOL, NULL, SS, NS, BS, M, L";

/// A typed value: an object of one type tag and its value, strictly as DynamoDB's API has it.
fn typed(v: Value, depth: usize) -> Result<AttributeValue, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than DynamoDB's {MAX_DEPTH} levels"));
    }
    let Value::Object(m) = v else {
        return Err(format!("{} where a typed value ({{\"S\": ...}}) belongs", kind_of(&v)));
    };
    if m.len() != 1 {
        return Err(format!("a typed value has exactly one type tag ({TAGS}); this one has {}", m.len()));
    }
    let (tag, v) = m.into_iter().next().expect("one entry");
    let wrong = |want: &str, v: &Value| format!("{tag} takes {want}, not {}", kind_of(v));
    Ok(match (tag.as_str(), v) {
        ("S", Value::String(s)) => AttributeValue::S(s),
        ("N", Value::String(n)) => AttributeValue::N(number(&n)?),
        ("B", Value::String(b)) => AttributeValue::B(binary(&b)?),
        ("BOOL", Value::Bool(b)) => AttributeValue::Bool(b),
        ("NULL", Value::Bool(true)) => AttributeValue::Null(true),
        ("NULL", v) => return Err(format!("NULL takes true, not {v}")),
        ("SS", Value::Array(a)) => AttributeValue::Ss(set(a, &tag, |s| Ok(s.to_string()))?),
        ("NS", Value::Array(a)) => AttributeValue::Ns(distinct_numbers(set(a, &tag, number)?)?),
        ("BS", Value::Array(a)) => AttributeValue::Bs(set(a, &tag, binary)?),
        ("L", Value::Array(a)) => AttributeValue::L(a.into_iter().map(|e| typed(e, depth + 1)).collect::<Result<_, _>>()?),
        ("M", Value::Object(m)) => AttributeValue::M(
            m.into_iter()
                .map(|(k, e)| Ok((name(k)?, typed(e, depth + 1).map_err(|err| format!("in a map: {err}"))?)))
                .collect::<Result<_, String>>()?,
        ),
        ("S" | "N" | "B", v) => return Err(wrong("a string", &v)),
        ("BOOL", v) => return Err(wrong("true or false", &v)),
        ("SS" | "NS" | "BS" | "L", v) => return Err(wrong("an array", &v)),
        ("M", v) => return Err(wrong("an object", &v)),
        (other, _) => return Err(format!("unknown type tag {}; DynamoDB's are {TAGS}", crate::error::quoted(other))),
    })
}

/// A set's elements: strings, each read by `read`, at least one, no two alike.
fn set<T>(a: Vec<Value>, tag: &str, read: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    if a.is_empty() {
        return Err(format!("{tag} is empty; DynamoDB has no empty sets"));
    }
    let mut seen = HashSet::new();
    a.iter()
        .map(|e| {
            let Value::String(s) = e else {
                return Err(format!("{tag} holds {}; its elements are strings", kind_of(e)));
            };
            if !seen.insert(s.as_str()) {
                return Err(format!("{tag} holds {} twice; a set's elements are unique", crate::error::quoted(s)));
            }
            read(s)
        })
        .collect()
}

/// A number set whose elements are distinct as numbers, not only as text (`1` and `1.0` are one
/// number to DynamoDB, which refuses such a set).
fn distinct_numbers(ns: Vec<String>) -> Result<Vec<String>, String> {
    let mut seen = HashSet::new();
    for n in &ns {
        if !seen.insert(canonical(n)) {
            return Err(format!("NS holds the number {} twice (written otherwise); a set's elements are unique", crate::error::quoted(n)));
        }
    }
    Ok(ns)
}

/// A number (already checked by [`number`]) as sign, significant digits and magnitude.
fn canonical(n: &str) -> String {
    let (sign, body) = n.strip_prefix('-').map_or(("", n), |b| ("-", b));
    let (mantissa, exp) = body.split_once(['e', 'E']).unwrap_or((body, "0"));
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int}{frac}");
    let lead = all.trim_start_matches('0');
    let significant = lead.trim_end_matches('0');
    if significant.is_empty() {
        return "0".into();
    }
    let magnitude = exp.parse::<i64>().unwrap_or(0) + lead.len() as i64 - 1 - frac.len() as i64;
    format!("{sign}{significant}E{magnitude}")
}

fn binary(b: &str) -> Result<Blob, String> {
    aws_smithy_types::base64::decode(b).map(Blob::new).map_err(|e| format!("B is not base64 ({e})"))
}

/// A number as DynamoDB takes it: decimal digits with an optional sign, fraction and exponent, at
/// most 38 significant digits, its magnitude from 1E-130 to below 1E+126.
pub fn number(n: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("{} is not a DynamoDB number: {why}", crate::error::quoted(n)));
    let body = n.strip_prefix('-').unwrap_or(n);
    let (mantissa, exp) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, e),
        None => (body, "0"),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let exp_digits = exp.strip_prefix(['-', '+']).unwrap_or(exp);
    if (int.is_empty() && frac.is_empty()) || !digits_only(int) || !digits_only(frac) || exp_digits.is_empty() || !digits_only(exp_digits) {
        return bad("expected digits, an optional fraction and exponent");
    }
    let all = format!("{int}{frac}");
    let lead = all.trim_start_matches('0');
    let significant = lead.trim_end_matches('0');
    if significant.len() > 38 {
        return bad("more than 38 significant digits");
    }
    if !significant.is_empty() {
        let exp: i64 = exp.parse().map_err(|_| "exponent out of range".to_string())?;
        let magnitude = exp + lead.len() as i64 - 1 - frac.len() as i64;
        if !(-130..=125).contains(&magnitude) {
            return bad("out of DynamoDB's range (1E-130 to 9.99...E+125)");
        }
    }
    Ok(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed_line(s: &str) -> Result<Item, String> {
        item(s.as_bytes(), ItemFormat::DynamodbJson)
    }

    #[test]
    fn every_type_reads_and_the_format_is_told_by_pk() {
        let line = r#"{"pk":{"S":"a"},"sk":{"S":"b"},"n":{"N":"-1.5e3"},"b":{"B":"aGk="},"t":{"BOOL":true},"z":{"NULL":true},
            "ss":{"SS":["x","y"]},"ns":{"NS":["1","2"]},"bs":{"BS":["aGk="]},"l":{"L":[{"S":"u"},{"M":{"k":{"N":"0"}}}]},"m":{"M":{}}}"#;
        let it = typed_line(&line.replace('\n', "")).unwrap();
        assert_eq!(it.len(), 11);
        assert_eq!(it["b"], AttributeValue::B(Blob::new(b"hi".to_vec())));
        assert_eq!(detect(line.replace('\n', "").as_bytes()).unwrap(), ItemFormat::DynamodbJson);
        let p = item(br#"{"pk":"a","sk":"b","n":12,"f":1.5,"l":[null,true,{"x":"y"}]}"#, ItemFormat::Json).unwrap();
        assert_eq!((&p["n"], &p["f"]), (&AttributeValue::N("12".into()), &AttributeValue::N("1.5".into())));
        assert_eq!(detect(br#"{"pk":"a"}"#).unwrap(), ItemFormat::Json);
    }

    #[test]
    fn what_is_not_an_item_is_said() {
        let cases = [
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"x":{"Q":"1"}}"#, "unknown type tag \"Q\""),
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"x":{"SS":[]}}"#, "no empty sets"),
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"x":{"SS":["a","a"]}}"#, "twice"),
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"x":{"NS":["1","1.0"]}}"#, "NS holds the number \"1.0\" twice"),
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"x":{"NS":["-0.5","-5E-1"]}}"#, "twice"),
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"":{"S":"x"}}"#, "an attribute name is empty"),
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"message_group_uuid":{"N":"5"}}"#, "key of the index"),
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"message_group_uuid":{"S":""}}"#, "key of the index"),
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"x":{"B":"!!"}}"#, "not base64"),
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"x":{"N":"1x"}}"#, "not a DynamoDB number"),
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"x":{"NULL":false}}"#, "NULL takes true"),
            (r#"{"pk":{"S":"a"},"sk":{"S":"b"},"x":{"S":"a","N":"1"}}"#, "exactly one type tag"),
            (r#"{"pk":{"N":"1"},"sk":{"S":"b"}}"#, "not of type S"),
            (r#"{"id":{"S":"1"}}"#, "no pk attribute"),
            (r#"{"pk":{"S":"a"}}"#, "no sk attribute"),
            (r#"{"pk":{"S":""},"sk":{"S":"b"}}"#, "pk is empty"),
            ("[1]", "not a JSON object"),
            ("{", "not JSON"),
        ];
        for (line, said) in cases {
            let e = typed_line(line).unwrap_err();
            assert!(e.contains(said), "{line}: {e}");
        }
        let big = format!(r#"{{"pk":{{"S":"a"}},"sk":{{"S":"b"}},"x":{{"S":"{}"}}}}"#, "x".repeat(MAX_ITEM_BYTES));
        assert!(typed_line(&big).unwrap_err().contains("over DynamoDB's limit"));
    }

    #[test]
    fn numbers_follow_dynamodbs_rules() {
        for ok in ["0", "-0.0", "1e-130", "9.9e125", "12345678901234567890123456789012345678", "0.000100"] {
            assert!(number(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-", "1.2.3", "1e", "+1", "1e-131", "1e126", "123456789012345678901234567890123456789", "NaN", " 1"] {
            assert!(number(bad).is_err(), "{bad}");
        }
    }
}
