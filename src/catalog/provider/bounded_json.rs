//! Parsing untrusted catalog JSON with its limits enforced while parsing (issue 18): a
//! `serde_json::Value` is built by a visitor that counts every array's items and charges every
//! node against a memory budget, and stops at the first item or byte over a limit. A 4 MiB
//! `[0,0,…]` document is refused after [`MAX_ENTRIES`] items, not after half a gigabyte of
//! `Value`s. serde_json's own recursion limit (128) bounds the depth.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::{CatalogParseError, MAX_ENTRIES};

/// The most memory a parsed catalog may take, estimated while parsing (the real catalogs take
/// a few MiB).
pub(crate) const MAX_PARSED_BYTES: usize = 24 * 1024 * 1024;

/// What one node costs besides its text: the `Value` itself and its share of a container.
const NODE_COST: usize = std::mem::size_of::<Value>() + 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exceeded {
    Entries,
    Memory,
}

struct Budget {
    left: Cell<usize>,
    exceeded: Cell<Option<Exceeded>>,
}

impl Budget {
    fn charge<E: de::Error>(&self, cost: usize) -> Result<(), E> {
        match self.left.get().checked_sub(cost) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(Some(Exceeded::Memory));
                Err(E::custom("over the memory budget"))
            }
        }
    }
}

/// Parses `input` (at most `max_bytes` long) into a `Value` within [`MAX_ENTRIES`] items per
/// array and [`MAX_PARSED_BYTES`] of estimated memory.
pub(crate) fn parse_document(input: &[u8], max_bytes: usize) -> Result<Value, CatalogParseError> {
    parse_within(input, max_bytes, MAX_ENTRIES, MAX_PARSED_BYTES)
}

fn parse_within(
    input: &[u8],
    max_bytes: usize,
    max_items: usize,
    max_parsed: usize,
) -> Result<Value, CatalogParseError> {
    if input.len() > max_bytes {
        return Err(CatalogParseError::TooLarge {
            length: input.len(),
            max: max_bytes,
        });
    }
    let budget = Budget {
        left: Cell::new(max_parsed),
        exceeded: Cell::new(None),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(input);
    let parsed = Bounded {
        budget: &budget,
        max_items,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, budget.exceeded.get()) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(Exceeded::Entries)) => Err(CatalogParseError::TooManyEntries {
            count: max_items.saturating_add(1),
            max: max_items,
        }),
        (Err(_), Some(Exceeded::Memory)) => Err(CatalogParseError::TooComplex { max: max_parsed }),
        (Err(error), None) => Err(CatalogParseError::Json {
            line: error.line(),
            column: error.column(),
            message: error.to_string(),
        }),
    }
}

#[derive(Clone, Copy)]
struct Bounded<'b> {
    budget: &'b Budget,
    max_items: usize,
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.budget.charge(NODE_COST)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.budget.charge(NODE_COST)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.budget.charge(NODE_COST)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.budget.charge(NODE_COST)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.charge(NODE_COST.saturating_add(v.len()))?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.charge(NODE_COST.saturating_add(v.len()))?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.budget.charge(NODE_COST)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.budget.charge(NODE_COST)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            if items.len() >= self.max_items {
                self.budget.exceeded.set(Some(Exceeded::Entries));
                return Err(de::Error::custom("too many items"));
            }
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.budget.charge(NODE_COST)?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.budget.charge(NODE_COST.saturating_add(key.len()))?;
            if object.len() >= self.max_items {
                self.budget.exceeded.set(Some(Exceeded::Entries));
                return Err(de::Error::custom("too many fields"));
            }
            let value = map.next_value_seed(self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_documents_parse_as_serde_json_does() {
        let text = br#"{"firmwares":[{"a":1,"b":-2,"c":1.5,"d":"x","e":null,"f":[true,false]}]}"#;
        let ours = parse_document(text, 1 << 20).unwrap();
        let theirs: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn too_many_items_stop_the_parse_at_the_first_extra_one() {
        let mut text = b"[".to_vec();
        for _ in 0..100 {
            text.extend_from_slice(b"0,");
        }
        text.extend_from_slice(b"0]");
        assert_eq!(
            parse_within(&text, 1 << 20, 50, 1 << 20),
            Err(CatalogParseError::TooManyEntries { count: 51, max: 50 })
        );
        // Nested arrays count too, and so do the fields of an object.
        assert!(matches!(
            parse_within(br#"[{"a":[1,2,3,4]}]"#, 1 << 20, 3, 1 << 20),
            Err(CatalogParseError::TooManyEntries { .. })
        ));
        assert!(matches!(
            parse_within(br#"{"a":1,"b":2,"c":3,"d":4}"#, 1 << 20, 3, 1 << 20),
            Err(CatalogParseError::TooManyEntries { .. })
        ));
    }

    #[test]
    fn the_memory_budget_is_enforced_while_parsing() {
        let long = format!("[\"{}\"]", "x".repeat(10_000));
        assert_eq!(
            parse_within(long.as_bytes(), 1 << 20, 100, 5_000),
            Err(CatalogParseError::TooComplex { max: 5_000 })
        );
        assert!(parse_within(long.as_bytes(), 1 << 20, 100, 20_000).is_ok());
    }

    #[test]
    fn bad_json_keeps_its_position_and_the_byte_cap_comes_first() {
        assert!(matches!(
            parse_document(b"[1,\n2,", 1 << 20),
            Err(CatalogParseError::Json { line: 2, .. })
        ));
        assert!(matches!(
            parse_document(b"[1] [2]", 1 << 20),
            Err(CatalogParseError::Json { .. })
        ));
        assert_eq!(
            parse_document(&[b' '; 11], 10),
            Err(CatalogParseError::TooLarge {
                length: 11,
                max: 10
            })
        );
    }
}
