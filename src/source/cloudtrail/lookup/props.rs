//! Property tests of how a LookupEvents entry becomes a record: any `CloudTrailEvent` text
//! (records of any shape, any JSON, nesting past the recursion limit, not JSON at all) beside
//! any envelope fields. Nothing may panic; an entry whose event cannot be read is counted as
//! malformed and kept from the envelope whenever the envelope says what it is.

use aws_sdk_cloudtrail::primitives::DateTime as SmithyTime;
use aws_sdk_cloudtrail::types::Event;
use proptest::prelude::*;

use super::{is_read, record_of, PassStats};
use crate::event::Record;
use crate::hostile::{config, deep_json, exercise, hostile_short, hostile_string, json_value};
use crate::hostile::{record_json, CASES};

/// A `CloudTrailEvent`: a record of any shape, any JSON, deep nesting, or any text.
fn cloudtrail_event() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => record_json().prop_map(|v| v.to_string()),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => deep_json().prop_map(|(_, text)| text),
        2 => hostile_string(),
    ]
}

fn envelope_text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![3 => "[A-Za-z0-9.-]{1,20}".prop_map(Some), 1 => hostile_short().prop_map(Some),
                1 => Just(None)]
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn any_lookup_entry_is_a_record_or_counted_as_malformed(
        event_json in prop::option::of(cloudtrail_event()),
        id in envelope_text(),
        name in envelope_text(),
        source in envelope_text(),
        read_only in prop::option::of(prop_oneof![Just("true".to_owned()), Just("FALSE".to_owned()), hostile_short()]),
        seconds in prop::option::of(any::<i64>()),
    ) {
        let mut event = Event::builder()
            .set_event_id(id.clone())
            .set_event_name(name.clone())
            .set_event_source(source.clone())
            .set_read_only(read_only)
            .set_cloud_trail_event(event_json.clone())
            .set_event_time(seconds.map(SmithyTime::from_secs));
        if let Some(user) = &id {
            event = event.username(user);
        }
        let event = event.build();
        let mut stats = PassStats::default();
        let record = record_of(&event, &mut stats);
        let parsed = event_json.as_deref().and_then(|t| Record::parse(t).ok());
        prop_assert_eq!(stats.malformed, u32::from(parsed.is_none()));
        let named = [&id, &name, &source].iter().all(|f| f.as_deref().is_some_and(|s| !s.is_empty()));
        match (&parsed, &record) {
            (Some(parsed), Some(record)) => prop_assert_eq!(parsed, record),
            (None, Some(record)) => {
                prop_assert!(named);
                prop_assert_eq!(Some(record.event_id.as_str()), id.as_deref());
                prop_assert_eq!(Some(record.event_name.as_str()), name.as_deref());
            }
            (None, None) => prop_assert!(!named, "an entry with id, name and source dropped"),
            (Some(_), None) => prop_assert!(false, "a readable event dropped"),
        }
        if let Some(record) = &record {
            let _ = is_read(&event, record);
            exercise(record);
        }
    }
}
