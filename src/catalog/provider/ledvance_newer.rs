//! The LEDVANCE API as LEDVANCE documents it (CATALOGS.md, "The LEDVANCE API as documented by
//! LEDVANCE"): `GET {catalog URL}/newer?Company={u16}&Product={u16}&Version={a.b.c.d}` "gets the
//! list of newer firmwares sorted by version in descending order". 200 carries them, 204 is the
//! empty list, 400 an invalid request, 429 the rate limit.
//!
//! Sans-IO: the queries a set of devices needs, the URL of one, the reading of one answer, and
//! the catalog document a round of answers makes. The HTTP edge makes the calls
//! ([`CatalogClient::ledvance_newer`](super::http::CatalogClient::ledvance_newer)); the catalog
//! service paces them inside the source's limiter and ledger and stores the document, which the
//! ordinary [`ledvance::parse`](super::ledvance::parse) reads like the full list.
//!
//! * `Company` is the manufacturer code, `Product` the image type, `Version` the file version as
//!   `major.minor.build.revision` in decimal (the 4-part form; a 3-part one got HTTP 204 after
//!   September 2021). Only LEDVANCE's own manufacturer codes are asked about (4489 LEDVANCE,
//!   4364 OSRAM, the two codes its catalog lists, as zigpy restricts its provider too), and
//!   never an image type from the reserved 0xFFC0..=0xFFFF range.
//! * The answer is `{"firmwares":[…]}` with the list's item shape (zigbee-herdsman-converters'
//!   former LEDVANCE provider read `data.firmwares`); a bare array is accepted too, since the
//!   documentation calls it a list.
//! * A round's document holds every item answered this round for the (company, product) asked,
//!   plus the previous document's items for the pairs not answered this round (a call deferred
//!   by the rate limit, or refused with 400, keeps what was known), one item per identity.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use super::ledvance::{LedvanceVersion, MAX_CATALOG_BYTES};
use super::{CatalogParseError, MAX_ENTRIES, entries_array};

/// The manufacturer codes LEDVANCE's catalog covers: 4489 (LEDVANCE) and 4364 (OSRAM).
pub const LEDVANCE_MANUFACTURER_CODES: [u16; 2] = [0x1189, 0x110C];

/// First image type of the range ZCL §11.4.2.6 reserves (security credentials, configuration,
/// logs, and the 0xFFFF wildcard).
const FIRST_RESERVED_IMAGE_TYPE: u16 = 0xFFC0;

/// Most `newer` calls one refresh makes (the limiter paces them; the rest wait for the next).
pub const MAX_NEWER_QUERIES: usize = 64;

/// One `newer` call: a device's manufacturer code, image type and file version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NewerQuery {
    /// `Company`: the manufacturer code.
    pub company: u16,
    /// `Product`: the image type.
    pub product: u16,
    /// `Version`: the device's file version.
    pub version: u32,
}

impl NewerQuery {
    /// `Company=…&Product=…&Version=a.b.c.d`, for logs and the report.
    pub fn parameters(self) -> String {
        format!(
            "Company={}&Product={}&Version={}",
            self.company,
            self.product,
            LedvanceVersion::from_file_version(self.version).dotted()
        )
    }

    /// The call's URL on the source's catalog URL.
    pub fn url(self, catalog_url: &str) -> String {
        format!(
            "{}/newer?{}",
            catalog_url.trim_end_matches('/'),
            self.parameters()
        )
    }
}

/// What one `newer` call answered.
#[derive(Debug, Clone, PartialEq)]
pub enum NewerAnswer {
    /// 200: the newer firmwares, newest first, as the list's items.
    Newer(Vec<Value>),
    /// 204: nothing newer.
    NoneNewer,
    /// 400: the service calls the request invalid (the triple is skipped).
    Invalid,
}

/// The distinct queries for `devices` (manufacturer code, image type, file version), in order,
/// LEDVANCE's manufacturer codes only, reserved image types left out; and how many more there
/// were than [`MAX_NEWER_QUERIES`].
pub fn queries(devices: impl IntoIterator<Item = (u16, u16, u32)>) -> (Vec<NewerQuery>, usize) {
    let distinct: BTreeSet<NewerQuery> = devices
        .into_iter()
        .filter(|(company, product, _)| {
            LEDVANCE_MANUFACTURER_CODES.contains(company) && *product < FIRST_RESERVED_IMAGE_TYPE
        })
        .map(|(company, product, version)| NewerQuery {
            company,
            product,
            version,
        })
        .collect();
    let over = distinct.len().saturating_sub(MAX_NEWER_QUERIES);
    (distinct.into_iter().take(MAX_NEWER_QUERIES).collect(), over)
}

/// Reads a 200 answer: `{"firmwares":[…]}` or a bare array of the list's items. The items are
/// checked one by one later, by the catalog parser.
pub fn read_answer(body: &[u8]) -> Result<Vec<Value>, CatalogParseError> {
    const SHAPE: &str = "an object with a \"firmwares\" array, or an array";
    let document = super::json::parse_document(body, MAX_CATALOG_BYTES)?;
    let items = match &document {
        Value::Object(root) => entries_array(root.get("firmwares"), SHAPE)?,
        Value::Array(_) => entries_array(Some(&document), SHAPE)?,
        _ => return Err(CatalogParseError::Shape { expected: SHAPE }),
    };
    Ok(items.to_vec())
}

/// An item's `identity`: (company, product, packed file version), when readable.
fn identity(item: &Value) -> Option<(u16, u16, u32)> {
    let identity = item.get("identity")?;
    let number = |value: &Value, name: &str| value.get(name)?.as_u64();
    let company = u16::try_from(number(identity, "company")?).ok()?;
    let product = u16::try_from(number(identity, "product")?).ok()?;
    let version = identity.get("version")?;
    let part = |name: &str| u8::try_from(number(version, name)?).ok();
    let packed = u32::from_be_bytes([
        part("major")?,
        part("minor")?,
        part("build")?,
        part("revision")?,
    ]);
    Some((company, product, packed))
}

/// The catalog document (`{"firmwares":[…]}`) one round of `answers` makes on top of the
/// `previous` document (see the module docs). An item whose identity cannot be read is dropped
/// (the parser would refuse it anyway), as is an answered item for another (company, product)
/// than asked.
pub fn assemble(previous: Option<&[u8]>, answers: &[(NewerQuery, Vec<Value>)]) -> Vec<u8> {
    let answered: HashSet<(u16, u16)> = answers
        .iter()
        .map(|(query, _)| (query.company, query.product))
        .collect();
    let fresh = answers.iter().flat_map(|(query, items)| {
        items.iter().filter(move |item| {
            identity(item).is_some_and(|(c, p, _)| (c, p) == (query.company, query.product))
        })
    });
    let kept_items = previous
        .and_then(|body| read_answer(body).ok())
        .unwrap_or_default();
    let kept = kept_items
        .iter()
        .filter(|item| identity(item).is_some_and(|(c, p, _)| !answered.contains(&(c, p))));
    let mut seen = HashSet::new();
    let firmwares: Vec<&Value> = fresh
        .chain(kept)
        .filter(|item| identity(item).is_some_and(|key| seen.insert(key)))
        .take(MAX_ENTRIES)
        .collect();
    let document = serde_json::json!({ "firmwares": firmwares });
    serde_json::to_vec(&document).unwrap_or_else(|_| b"{\"firmwares\":[]}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(product: u16, version: [u8; 4]) -> Value {
        serde_json::json!({"identity": {"company": 4489, "product": product, "version":
            {"major": version[0], "minor": version[1], "build": version[2], "revision": version[3]}},
            "shA256": "ab".repeat(32), "length": 10})
    }

    #[test]
    fn queries_are_distinct_ledvance_and_capped() {
        let (qs, over) = queries([
            (0x1189, 25, 0x0010_2428),
            (0x1189, 25, 0x0010_2428),
            (0x110C, 3, 1),
            (0x117C, 1, 1),      // IKEA: not LEDVANCE's
            (0x1189, 0xFFFF, 1), // the wildcard
        ]);
        assert_eq!(over, 0);
        assert_eq!(
            qs,
            vec![
                NewerQuery {
                    company: 0x110C,
                    product: 3,
                    version: 1
                },
                NewerQuery {
                    company: 0x1189,
                    product: 25,
                    version: 0x0010_2428
                },
            ]
        );
        assert_eq!(
            qs[1].url("http://127.0.0.1:9/v1/zigbee/firmwares/"),
            "http://127.0.0.1:9/v1/zigbee/firmwares/newer?Company=4489&Product=25&Version=0.16.36.40"
        );
        let many = (0..100u32).map(|v| (0x1189, 1, v));
        let (qs, over) = queries(many);
        assert_eq!(
            (qs.len(), over),
            (MAX_NEWER_QUERIES, 100 - MAX_NEWER_QUERIES)
        );
    }

    #[test]
    fn answers_read_both_shapes_and_refuse_others() {
        let object = serde_json::json!({"firmwares": [item(1, [1, 0, 0, 0])]}).to_string();
        assert_eq!(read_answer(object.as_bytes()).unwrap().len(), 1);
        let array = serde_json::json!([item(1, [1, 0, 0, 0]), item(1, [0, 9, 0, 0])]).to_string();
        assert_eq!(read_answer(array.as_bytes()).unwrap().len(), 2);
        for bad in [&b"{\"items\":[]}"[..], b"7", b"{\"firmwares\":{}}", b"{"] {
            assert!(
                read_answer(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_round_replaces_what_it_answered_and_keeps_the_rest() {
        let previous = serde_json::json!({"firmwares": [
            item(1, [1, 0, 0, 0]), item(2, [2, 0, 0, 0]), {"identity": "garbage"}
        ]})
        .to_string();
        let q1 = NewerQuery {
            company: 4489,
            product: 1,
            version: 0x0100_0000,
        };
        let q3 = NewerQuery {
            company: 4489,
            product: 3,
            version: 0,
        };
        let answers = vec![
            (q1, vec![]), // 204: nothing newer than 1.0.0.0 for product 1
            (
                q3,
                vec![
                    item(3, [3, 0, 0, 1]),
                    item(3, [3, 0, 0, 1]),
                    item(9, [9, 9, 9, 9]),
                ],
            ),
        ];
        let document = assemble(Some(previous.as_bytes()), &answers);
        let items = read_answer(&document).unwrap();
        let identities: Vec<_> = items.iter().filter_map(identity).collect();
        // Product 3 answered (deduplicated, the stray product 9 dropped); product 2 kept from
        // before; product 1 answered empty, so its old item goes.
        assert_eq!(
            identities,
            vec![(4489, 3, 0x0300_0001), (4489, 2, 0x0200_0000)]
        );
        assert_eq!(
            read_answer(&assemble(None, &[])).unwrap(),
            Vec::<Value>::new()
        );
    }

    proptest! {
        #[test]
        fn arbitrary_answers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_answer(&data);
            let query = NewerQuery { company: 4489, product: 1, version: 0 };
            let document = assemble(Some(&data), &[(query, read_answer(&data).unwrap_or_default())]);
            prop_assert!(read_answer(&document).is_ok());
        }
    }
}
